from nodes import runtime
from nodes.config import ZkShardConfig
from nodes.zkshard.server import run

if __name__ == "__main__":
    runtime.main(ZkShardConfig, run)
