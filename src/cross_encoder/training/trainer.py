"""HF ``Trainer`` with the grouped softmax loss, fresh negatives every epoch, a guard against
a non-finite loss, learning rates per parameter group (the new score head apart from the
encoder, layer-wise decay) and model selection by reranking dev
(:mod:`cross_encoder.training.selection`); resuming from the last complete checkpoint."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback

from cross_encoder.training.loss import grouped_softmax_loss
from cross_encoder.training.nonfinite import NonFiniteGuard, NonFiniteLossError
from cross_encoder.training.preemption import StopOnSignal

logger = logging.getLogger(__name__)

_LAYER = re.compile(r"\.(?:layer|layers|block|blocks)\.(\d+)\.")


def lr_multipliers(
    model, head_lr_ratio: float | None, layer_decay: float | None
) -> dict[str, float]:
    """Learning-rate factor per parameter name.

    The *head* is every parameter outside the base model (``model.base_model_prefix``: BERT's
    ``classifier``, RoBERTa's ``classifier.*``, DeBERTa's ``pooler`` + ``classifier``), the part
    a pretrained checkpoint does not provide; it gets ``head_lr_ratio``. With ``layer_decay``
    the top encoder layer keeps factor 1, layer ``i`` of ``L`` gets ``decay ** (L - 1 - i)``
    and the embeddings ``decay ** L`` (Clark et al., ELECTRA, 2020); parameters of the base
    model in no layer (a pooler) keep 1.
    """
    prefix = getattr(model, "base_model_prefix", "")
    names = [n for n, _ in model.named_parameters()]
    layers = {int(m.group(1)) for n in names if (m := _LAYER.search(n))}
    n_layers = max(layers) + 1 if layers else 0
    out = {}
    for n in names:
        if prefix and not n.startswith(prefix + "."):
            out[n] = head_lr_ratio if head_lr_ratio is not None else 1.0
            continue
        factor = 1.0
        if layer_decay is not None and n_layers:
            m = _LAYER.search(n)
            if m:
                factor = layer_decay ** (n_layers - 1 - int(m.group(1)))
            elif "embed" in n:
                factor = layer_decay**n_layers
        out[n] = factor
    return out


class EpochSetter(TrainerCallback):
    """Tell the dataset which epoch it is, so each epoch draws new negatives (and a resumed
    run draws what an uninterrupted one would)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        """Set the dataset's epoch before the epoch's first batch."""
        # state.epoch is the loop's epoch here (a resumed run loads e.g. 1.5 -> epoch 1);
        # the epsilon guards against a float sum landing just under a whole number.
        self.dataset.set_epoch(int((state.epoch or 0) + 1e-6))


class EvaluateAtEpochEnd(TrainerCallback):
    """Evaluate (and save, so the checkpoint can be selected) at the end of every epoch, on top
    of ``eval_steps``, unless this step was just evaluated."""

    def __init__(self):
        self.last_step = -1

    def on_evaluate(self, args, state, control, **kwargs):
        """Remember the step that was just evaluated."""
        self.last_step = state.global_step

    def on_epoch_end(self, args, state, control, **kwargs):
        """Ask for an evaluation (and a save) unless this step was just evaluated."""
        if state.global_step != self.last_step and args.eval_strategy != "no":
            control.should_evaluate = True
            if args.save_strategy != "no":
                control.should_save = True


class CrossEncoderTrainer(Trainer):
    """HF ``Trainer`` for a cross-encoder on groups (positive first, then negatives).

    Each batch holds groups of ``group_size`` pairs; the loss is the grouped softmax
    cross-entropy (:func:`~cross_encoder.training.loss.grouped_softmax_loss`). Adds the
    optimizer groups of :class:`~cross_encoder.training.arguments.CrossEncoderTrainingArguments`
    (head learning rate, layer-wise decay, no decay on biases and LayerNorm), dev evaluation by
    reranking instead of a loss, the non-finite loss guard and saving on SIGTERM/SIGUSR1.

    Args:
        *args: ``Trainer``'s positional arguments (model, args, ...).
        group_size: pairs per group (``--train_group_size``).
        temperature: divide the scores by this before the softmax; default
            ``args.temperature`` (``--temperature``), None: 1.
        evaluator: a :class:`~cross_encoder.reranking.evaluator.RerankEvaluator` that
            ``evaluate()`` runs instead of a loss on ``eval_dataset``; None: no dev evaluation.
        **kwargs: ``Trainer``'s keyword arguments.

    References:
        Gao, Dai and Callan, "Rethink Training of BERT Rerankers in Multi-Stage Retrieval
        Pipeline", ECIR 2021 (the localized contrastive loss over groups).
    """

    def __init__(
        self,
        *args,
        group_size: int,
        temperature: float | None = None,
        evaluator=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.group_size = group_size
        if temperature is None:
            temperature = getattr(self.args, "temperature", None)
        self.temperature = temperature
        self.evaluator = evaluator
        # fp16 trains under a loss scaler (DeepSpeed's or torch's GradScaler), which skips
        # the step of a non-finite loss; bf16/fp32 have none (cross_encoder.training.nonfinite)
        self.nonfinite = NonFiniteGuard(
            loss_scaler=bool(self.args.fp16),
            max_in_a_row=getattr(self.args, "max_nonfinite_steps", 10),
        )
        self.add_callback(self.nonfinite)
        # HF's filter reads the loss on the host every micro-step; the guard needs no sync
        self.args.logging_nan_inf_filter = False
        self.add_callback(StopOnSignal())  # SIGTERM/SIGUSR1: checkpoint, then Preempted
        if evaluator is not None:
            self.add_callback(EvaluateAtEpochEnd())
            patience = getattr(self.args, "early_stopping_patience", None)
            if patience:
                self.add_callback(EarlyStoppingCallback(early_stopping_patience=patience))
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

    def create_optimizer(self, model=None):
        """HF's optimizer, with one parameter group per (learning rate, weight decay) when a
        head learning rate or layer-wise decay is asked for. Under DeepSpeed too: a DeepSpeed
        JSON without an ``optimizer`` block makes transformers call this and hand the result
        to the engine (``--deepspeed`` refuses a JSON with one: ``arguments.
        check_deepspeed_optimizer``)."""
        head_lr = getattr(self.args, "head_learning_rate", None)
        decay = getattr(self.args, "layerwise_lr_decay", None)
        if self.optimizer is None and (head_lr is not None or decay is not None):
            opt_model = self.model if model is None else model
            base = self.args.learning_rate
            factors = lr_multipliers(opt_model, None if head_lr is None else head_lr / base, decay)
            decayed = set(self.get_decay_parameter_names(opt_model))
            groups: dict[tuple[float, float], list] = {}
            for n, p in opt_model.named_parameters():
                if p.requires_grad:
                    wd = self.args.weight_decay if n in decayed else 0.0
                    groups.setdefault((base * factors[n], wd), []).append(p)
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = cls(
                [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                **kwargs,
            )
            logger.info(
                "optimizer: %d parameter groups, learning rates %s",
                len(groups),
                ", ".join(f"{lr:.3g}" for lr in sorted({lr for lr, _ in groups})),
            )
        return super().create_optimizer(model)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """Rerank the dev sample with the current weights (see
        :mod:`cross_encoder.training.selection`)."""
        if self.evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        start = time.perf_counter()
        dtype = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None
        values = self.evaluator(self.model, self.args.device, autocast_dtype=dtype)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in values.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 3)
        self.log(metrics)
        logger.info(
            "dev at step %d: %s",
            self.state.global_step,
            ", ".join(f"{k} {v:.4f}" for k, v in values.items()),
        )
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Grouped softmax loss of one batch of groups (the positive is each group's first)."""
        outputs = model(**inputs)
        loss = grouped_softmax_loss(outputs.logits, self.group_size, self.temperature)
        self.nonfinite.record(loss)  # no host sync; NonFiniteGuard decides at its checks
        return (loss, outputs) if return_outputs else loss

    def training_step(self, *args, **kwargs):
        """HF's step; a non-finite loss counts 0 in the logged mean (see ``log``)."""
        # A skipped step's loss counts 0 in the logged mean (no sync, unlike HF's filter).
        loss = super().training_step(*args, **kwargs)
        return torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """HF's log; stops on a non-finite logged loss, adds ``nonfinite_steps`` under fp16."""
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(f"logged loss is {loss} at step {self.state.global_step}")
        if loss is not None and self.nonfinite.loss_scaler:
            logs["nonfinite_steps"] = self.nonfinite.total  # skipped by the loss scaler
        super().log(logs, *args, **kwargs)


# --------------------------------------------------------------------------- resume


def _checkpoint_problem(path: Path, world_size: int) -> str | None:
    """Why ``path`` cannot be resumed from (None if it can). HF writes a checkpoint's
    ``trainer_state.json`` last, so a run killed while saving leaves it missing or cut."""
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "no complete trainer_state.json (killed while saving?)"
    if not (any(path.glob("*.safetensors")) or any(path.glob("global_step*"))):
        return "no model weights"
    latest = path / "latest"
    if latest.exists() and not (path / latest.read_text().strip()).is_dir():
        return "DeepSpeed 'latest' names a missing folder"
    rng = (
        ["rng_state.pth"] if world_size == 1 else [f"rng_state_{i}.pth" for i in range(world_size)]
    )
    missing = [r for r in rng if not (path / r).exists()]
    if missing:
        logger.warning(
            "%s lacks %s (another number of processes?): resuming without restoring those RNG "
            "states, so dropout will not repeat an uninterrupted run exactly",
            path,
            ", ".join(missing),
        )
    return None


def last_complete_checkpoint(output_dir: str, world_size: int = 1) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that a run can resume from; incomplete
    ones (a run killed while saving) are skipped with a warning."""
    found = []
    for p in Path(output_dir).iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    for _, p in sorted(found, reverse=True):
        why = _checkpoint_problem(p, world_size)
        if why is None:
            return str(p)
        logger.warning("skipping %s: %s", p, why)
    return None


def resume_checkpoint(training_args) -> str | None:
    """The checkpoint an interrupted run in ``--output_dir`` resumes from (None: start)."""
    if not os.path.isdir(training_args.output_dir) or getattr(
        training_args, "overwrite_output_dir", False
    ):
        return None
    last = last_complete_checkpoint(training_args.output_dir, training_args.world_size)
    if last:
        logger.info("resuming from %s", last)
    return last
