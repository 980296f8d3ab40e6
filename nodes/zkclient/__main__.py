from nodes import runtime
from nodes.config import ZkClientConfig
from nodes.zkclient.load import run

if __name__ == "__main__":
    runtime.main(ZkClientConfig, run)
