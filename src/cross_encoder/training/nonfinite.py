"""A guard against non-finite losses that costs no host sync per micro-step.

Under fp16 a loss scaler (DeepSpeed's dynamic loss scale, torch's ``GradScaler``) already
skips an optimizer step whose gradients overflow, and a NaN/inf loss makes exactly such
gradients: the step is skipped, nothing is broken. So with a loss scaler a non-finite loss
is counted (``nonfinite_steps`` in the logs, a warning) and the run stops only after
``max_in_a_row`` optimizer steps in a row had one (the model, not the scale, is then
diverging). Without a loss scaler (fp32, bf16) the optimizer would apply NaN gradients, so
the first non-finite loss stops the run, before anything is saved or evaluated.

The flags live on the device: :meth:`NonFiniteGuard.record` and the per-step bookkeeping
queue tensor operations only; the host reads them every ``check_every`` optimizer steps and
whenever the trainer is about to log, save, evaluate or stop (so no broken checkpoint is
ever written). transformers' own ``logging_nan_inf_filter`` (a sync every micro-step) is
turned off by :class:`~cross_encoder.training.trainer.CrossEncoderTrainer`.
"""

from __future__ import annotations

import logging

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training stopped on a non-finite loss; the message names the step and what to change."""


class NonFiniteGuard(TrainerCallback):
    """Count non-finite losses on the device and stop the run on too many.

    Under a loss scaler (fp16) a non-finite step is skipped and counted, and the run stops
    after ``max_in_a_row`` in a row; without one the first stops it. Flags stay on the device
    and are read every ``check_every`` optimizer steps (no host sync per micro-step).

    Args:
        loss_scaler: training runs under a loss scaler that skips non-finite steps.
        max_in_a_row: non-finite optimizer steps in a row that stop the run.
        check_every: optimizer steps between two reads of the device flags.
    """

    def __init__(self, loss_scaler: bool, max_in_a_row: int = 10, check_every: int = 10):
        if max_in_a_row < 1 or check_every < 1:
            raise ValueError("max_in_a_row and check_every must be >= 1")
        self.loss_scaler = loss_scaler
        self.max_in_a_row = max_in_a_row
        self.check_every = check_every
        self._step_bad = None  # this optimizer step: any micro-step non-finite (device bool)
        # device int64: [steps in a row now, total, first bad step, longest run, its end]
        self._state = None
        self._first_value = None  # the first non-finite loss (device)
        self._seen = None  # any non-finite loss yet (device bool)
        self._reported = 0
        self.total = 0  # non-finite optimizer steps so far, as of the last check

    def record(self, loss: torch.Tensor) -> None:
        """Note one micro-step's loss (no sync)."""
        loss = loss.detach().float().reshape(-1)[0]
        bad = ~torch.isfinite(loss)
        if self._first_value is None:
            self._first_value = torch.zeros((), device=loss.device)
            self._seen = torch.zeros((), dtype=torch.bool, device=loss.device)
        self._first_value = torch.where(bad & ~self._seen, loss, self._first_value)
        self._seen = self._seen | bad
        self._step_bad = bad if self._step_bad is None else self._step_bad | bad

    def on_step_end(self, args, state, control, **kwargs):
        """Close the optimizer step's flag; every ``check_every`` steps, read and decide."""
        if self._step_bad is not None:
            bad = self._step_bad.long()
            if self._state is None:
                self._state = torch.tensor([0, 0, -1, 0, -1], device=bad.device)
            run, total, first, longest, longest_end = self._state
            first = torch.where((bad > 0) & (first < 0), state.global_step, first)
            run = (run + 1) * bad
            longer = run > longest
            longest_end = torch.where(longer, state.global_step, longest_end)
            longest = torch.maximum(run, longest)
            self._state = torch.stack([run, total + bad, first, longest, longest_end])
            self._step_bad = None
        if (
            state.global_step % self.check_every == 0
            or control.should_log
            or control.should_save
            or control.should_evaluate
            or control.should_training_stop
        ):
            self.check()

    def on_train_end(self, args, state, control, **kwargs):
        """Account for a last partial accumulation and decide once more."""
        self.on_step_end(args, state, control)  # a last partial accumulation, if any
        self.check()

    def check(self) -> None:
        """Read the device counters (one sync) and stop the run if it must."""
        if self._state is None:
            return
        _, total, first, longest, end = self._state.tolist()
        self.total = total
        if total and not self.loss_scaler:
            value = float(self._first_value)
            raise NonFiniteLossError(
                f"loss is {value} at step {first}: stopping rather than saving a broken "
                "model (lower --learning_rate, use --bf16 instead of --fp16, or check the data)"
            )
        if longest >= self.max_in_a_row:
            raise NonFiniteLossError(
                f"loss non-finite in {longest} optimizer steps in a row (up to step {end}; "
                f"{total} in all, the first at step {first}); the loss scaler skipped them but "
                "the model diverged (lower --learning_rate, use --bf16, or check the data; "
                "--max_nonfinite_steps sets how many in a row stop the run)"
            )
        if total > self._reported:
            logger.warning(
                "non-finite loss in %d optimizer step(s) so far (the loss scaler skipped them)",
                total,
            )
            self._reported = total
