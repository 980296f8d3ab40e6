from nodes import runtime
from nodes.config import SequencerConfig
from nodes.sequencer.server import run

if __name__ == "__main__":
    runtime.main(SequencerConfig, run)
