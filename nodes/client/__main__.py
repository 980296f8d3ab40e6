from nodes import runtime
from nodes.client.workload import run
from nodes.config import ClientConfig

if __name__ == "__main__":
    runtime.main(ClientConfig, run)
