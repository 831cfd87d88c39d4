"""``cross_encoder.run`` with a pause after every optimizer step, so a test can kill a
training run between checkpoints. The pause changes no numbers.

    torchrun ... tests/helpers/slow_run.py --pause 0.5 <cross_encoder.run arguments>
"""

from __future__ import annotations

import sys
import time

from transformers import TrainerCallback

from cross_encoder import run
from cross_encoder.training import trainer


class Pause(TrainerCallback):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(self.seconds)


def main() -> int:
    argv = sys.argv[1:]
    pause = 0.5
    if argv[:1] == ["--pause"]:
        pause, argv = float(argv[1]), argv[2:]
    init = trainer.CrossEncoderTrainer.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(Pause(pause))

    trainer.CrossEncoderTrainer.__init__ = patched
    return run.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
