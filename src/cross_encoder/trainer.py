"""HF ``Trainer`` with the grouped softmax loss, fresh negatives every epoch, and a guard
against a non-finite loss."""

from __future__ import annotations

import logging
import math

import torch
from transformers import Trainer, TrainerCallback

from .loss import grouped_softmax_loss

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    pass


class EpochSetter(TrainerCallback):
    """Tell the dataset which epoch it is, so each epoch draws new negatives (and a resumed
    run draws what an uninterrupted one would)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is the loop's epoch here (a resumed run loads e.g. 1.5 -> epoch 1);
        # the epsilon guards against a float sum landing just under a whole number.
        self.dataset.set_epoch(int((state.epoch or 0) + 1e-6))


class CrossEncoderTrainer(Trainer):
    def __init__(self, *args, group_size: int, temperature: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.group_size = group_size
        self.temperature = temperature
        if self.train_dataset is not None and hasattr(self.train_dataset, "set_epoch"):
            self.add_callback(EpochSetter(self.train_dataset))
            if self.args.dataloader_num_workers > 0 and self.args.dataloader_persistent_workers:
                # Persistent workers keep the dataset copy of epoch 0: every epoch would
                # draw the same negatives. Workers re-created per epoch see set_epoch.
                logger.warning(
                    "--dataloader_persistent_workers ignored: workers must see each epoch's "
                    "new negatives"
                )
                self.args.dataloader_persistent_workers = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = grouped_softmax_loss(outputs.logits, self.group_size, self.temperature)
        if not torch.isfinite(loss.detach()).all():
            step = self.state.global_step + 1
            raise NonFiniteLossError(
                f"loss is {loss.item()} at step {step}: stopping rather than saving a broken "
                "model (lower --learning_rate, use --bf16 instead of --fp16, or check the data)"
            )
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(f"logged loss is {loss} at step {self.state.global_step}")
        super().log(logs, *args, **kwargs)
