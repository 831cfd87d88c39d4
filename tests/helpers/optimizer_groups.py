"""``cross_encoder.run`` that writes, when training begins, the learning rate and weight
decay each parameter gets from the optimizer actually in use -- DeepSpeed's engine under
``--deepspeed``, the (DDP-wrapped) trainer's otherwise -- to ``<output_dir>/groups.<rank>.json``
as ``{parameter name: [lr, weight_decay]}``.

    torchrun ... tests/helpers/optimizer_groups.py <cross_encoder.run arguments>
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from transformers import TrainerCallback

from cross_encoder import run
from cross_encoder.training import trainer


def engine_groups(tr) -> tuple[str, list[tuple[list, dict]]]:
    """(kind, [(params of the group, the group's settings)]) read from the optimizer the
    training loop steps."""
    engine = tr.model_wrapped
    zero = getattr(engine, "optimizer", None) if hasattr(engine, "zero_optimization") else None
    if zero is not None:
        # ZeRO-2: bit16_groups[i] are the model's parameters of group i; the wrapped
        # optimizer's param_groups[i] hold its flat fp32 partition and its settings.
        groups = zero.optimizer.param_groups
        return type(zero).__name__, list(zip(zero.bit16_groups, groups, strict=True))
    opt = getattr(tr.optimizer, "optimizer", tr.optimizer)  # accelerate's wrapper
    return type(opt).__name__, [(g["params"], g) for g in opt.param_groups]


class DumpGroups(TrainerCallback):
    def __init__(self, tr):
        self.trainer = tr

    def on_train_begin(self, args, state, control, **kwargs):
        kind, groups = engine_groups(self.trainer)
        names = {id(p): n for n, p in self.trainer.model.named_parameters()}
        out = {}
        for params, g in groups:
            lr = g.get("initial_lr", g["lr"])  # the scheduler's warm-up scales "lr"
            for p in params:
                out[names[id(p)]] = [lr, g["weight_decay"]]
        rank = os.environ.get("RANK", "0")
        path = Path(args.output_dir) / f"groups.{rank}.json"
        path.write_text(json.dumps({"optimizer": kind, "groups": out}, indent=1))


def main() -> int:
    init = trainer.CrossEncoderTrainer.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(DumpGroups(self))

    trainer.CrossEncoderTrainer.__init__ = patched
    return run.main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
