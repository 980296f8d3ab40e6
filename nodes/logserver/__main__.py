from nodes import runtime
from nodes.config import LogServerConfig
from nodes.logserver.server import run

if __name__ == "__main__":
    runtime.main(LogServerConfig, run)
