from nodes import runtime
from nodes.config import CorfuClientConfig
from nodes.corfuclient.client import run

if __name__ == "__main__":
    runtime.main(CorfuClientConfig, run)
