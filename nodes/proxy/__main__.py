from nodes import runtime
from nodes.config import ProxyConfig
from nodes.proxy.replica import run

if __name__ == "__main__":
    runtime.main(ProxyConfig, run)
