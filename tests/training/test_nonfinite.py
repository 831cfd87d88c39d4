"""The non-finite loss guard (cross_encoder.training.nonfinite): with a loss scaler a NaN loss
is skipped and counted and only N in a row stop the run; without one the first stops it; and
no micro-step reads a device value on the host."""

from __future__ import annotations

import ast
import math
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerCallback

from cross_encoder import run
from cross_encoder.training import trainer
from cross_encoder.training.nonfinite import NonFiniteGuard, NonFiniteLossError


class SkipLikeAScaler(TrainerCallback):
    """Stand-in for fp16's loss scaler, which HF cannot run on a CPU (accelerate refuses fp16
    there): a step with non-finite gradients is skipped (AdamW leaves parameters without a
    gradient alone), as GradScaler and DeepSpeed's fp16 optimizer do."""

    def __init__(self, model):
        self.model = model
        self.skipped = 0

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not all(torch.isfinite(g).all() for g in grads):
            self.skipped += 1
            for p in self.model.parameters():
                p.grad = None


def train_argv(model, data, pre, out, *extra):
    return [
        "--output_dir", str(out),
        "--model_name_or_path", str(model),
        "--do_train",
        "--corpus_file", str(pre / "corpus"),
        "--train_query_file", str(pre / "train_query"),
        "--train_qrels", str(pre / "train_qrels.txt"),
        "--neg_file", str(data["neg_file"]),
        "--train_group_size", "4",
        "--max_len", "48",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3",
        "--max_steps", "6",
        "--logging_steps", "2",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
        *extra,
    ]  # fmt: skip


def run_with_nan(monkeypatch, nan_calls, argv):
    """run.main with the loss NaN at the given micro-steps (1-based) and a loss scaler."""
    real = trainer.grouped_softmax_loss
    calls = []

    def loss_fn(logits, group_size, temperature=None):
        calls.append(1)
        loss = real(logits, group_size, temperature)
        return loss * math.nan if len(calls) in nan_calls else loss

    init = trainer.CrossEncoderTrainer.__init__
    seen = {}

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.nonfinite.loss_scaler = True  # as under --fp16 on a GPU
        seen["scaler"] = SkipLikeAScaler(self.model)
        self.add_callback(seen["scaler"])

    monkeypatch.setattr(trainer, "grouped_softmax_loss", loss_fn)
    monkeypatch.setattr(trainer.CrossEncoderTrainer, "__init__", patched)
    return run.main(argv), seen["scaler"]


def test_scaler_skips_and_counts_nonfinite_steps(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    argv = train_argv(
        tiny_model_dir, tiny_data, tiny_preprocessed, out, "--max_nonfinite_steps", "3"
    )
    rc, scaler = run_with_nan(monkeypatch, {2, 3}, argv)
    assert rc == 0
    assert scaler.skipped == 2
    logs = [
        ast.literal_eval(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{'loss'")
    ]
    assert [d["nonfinite_steps"] for d in logs] == [1, 2, 2]
    assert all(math.isfinite(float(d["loss"])) for d in logs)
    assert (out / "model.safetensors").is_file()


def test_scaler_stops_after_n_nonfinite_steps_in_a_row(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    argv = train_argv(
        tiny_model_dir, tiny_data, tiny_preprocessed, out, "--max_nonfinite_steps", "3"
    )
    rc, _ = run_with_nan(monkeypatch, {2, 3, 4}, argv)
    assert rc == 3
    err = capsys.readouterr().err
    assert "loss non-finite in 3 optimizer steps in a row (up to step 4; 3 in all, " in err
    assert not (out / "model.safetensors").exists()


def steps(guard, losses, every=None):
    state = SimpleNamespace(global_step=0)
    for loss in losses:
        guard.record(torch.tensor(loss))
        state.global_step += 1
        control = SimpleNamespace(
            should_log=False, should_save=False, should_evaluate=False, should_training_stop=False
        )
        guard.on_step_end(None, state, control)


def test_no_host_read_between_checks(monkeypatch):
    """Micro-steps and step ends queue device operations only: .item(), .tolist() and bool()
    (each a CUDA sync) happen only at a check (every check_every steps, or log/save/eval)."""
    guard = NonFiniteGuard(loss_scaler=True, max_in_a_row=2, check_every=10)

    def no_sync(*a, **k):
        raise AssertionError("host read of a device value")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, no_sync)
    steps(guard, [1.0, math.nan, math.nan, math.inf, 2.0, 3.0, 4.0, 5.0, 6.0])  # 9 steps
    monkeypatch.undo()
    # the run of 3 ended at step 4 and steps 5-9 were fine: the check still sees it
    with pytest.raises(NonFiniteLossError, match=r"3 optimizer steps in a row \(up to step 4;"):
        guard.check()


def test_without_a_scaler_the_first_nonfinite_loss_stops():
    guard = NonFiniteGuard(loss_scaler=False, check_every=1)
    with pytest.raises(NonFiniteLossError, match="loss is inf at step 2"):
        steps(guard, [1.0, math.inf, 1.0])
