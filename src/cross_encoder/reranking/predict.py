"""Score query-passage pairs fast: pre-tokenized inputs, length-sorted batches under a
token budget, ``inference_mode``, sharded across ``torchrun`` ranks and gathered in input
order; bf16 weights on a CPU where that is fast, autocast on a GPU, the score head in float32
either way. On CUDA out-of-memory a batch is split and retried instead of failing the run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.training.dataset import PairTemplate

logger = logging.getLogger(__name__)


def make_batches(lengths: Sequence[int], max_tokens: int, max_pairs: int) -> list[np.ndarray]:
    """Group indices, longest first, so that ``len(batch) * longest <= max_tokens``."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        width = lengths[order[start]]
        size = max(1, min(max_pairs, max_tokens // max(1, width)))
        batches.append(order[start : start + size])
        start += size
    return batches


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.inference_mode()
def _forward(model, template: PairTemplate, pairs, device, dtype=None) -> torch.Tensor:
    batch = {k: v.to(device, non_blocking=True) for k, v in template.pad(pairs).items()}
    device_type = torch.device(device).type
    with torch.autocast(device_type=device_type, dtype=dtype, enabled=dtype is not None):
        logits = model(**batch).logits
    return logits.float().reshape(len(pairs), -1)[:, 0].cpu()


def _score_batch(model, template, pairs, device, dtype=None) -> torch.Tensor:
    try:
        return _forward(model, template, pairs, device, dtype)
    except torch.cuda.OutOfMemoryError:
        if len(pairs) == 1:
            raise
        torch.cuda.empty_cache()
        half = len(pairs) // 2
        logger.warning("CUDA out of memory on %d pairs: splitting the batch", len(pairs))
        return torch.cat(
            [
                _score_batch(model, template, pairs[:half], device, dtype),
                _score_batch(model, template, pairs[half:], device, dtype),
            ]
        )


def _score_head(model) -> torch.nn.Linear | None:
    """The classifier's last linear layer (``out_features == num_labels``), if found."""
    n = getattr(getattr(model, "config", None), "num_labels", 1)
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == n]
    return heads[-1] if heads else None


@contextlib.contextmanager
def fp32_score_head(model):
    """Run the score head in float32 under autocast or on a half-precision model, so that
    scores keep full resolution (fp16/bf16 logits tie: 3 significant digits or fewer)."""
    head = _score_head(model)
    if head is None:
        yield
        return

    def forward(x):
        with torch.autocast(device_type=x.device.type, enabled=False):
            bias = None if head.bias is None else head.bias.float()
            return torch.nn.functional.linear(x.float(), head.weight.float(), bias)

    head.forward = forward
    try:
        yield
    finally:
        del head.forward


def cast_for_inference(model, dtype: torch.dtype):
    """Cast ``model``'s weights to ``dtype`` (bf16 on an AMX CPU) in place, except the score
    head, which stays float32 and runs in float32 (:func:`fp32_score_head`): scores keep full
    resolution. On a CPU this is faster than autocast, which re-casts every weight on every
    forward. Inference only: training needs float32 master weights."""
    head = _score_head(model)
    model.to(dtype)
    if head is not None:
        head.to(torch.float32)
    return model


def score_pairs(
    model,
    template: PairTemplate,
    queries: TokenizedCollection,
    corpus: TokenizedCollection,
    pairs: Sequence[tuple[str, str]],
    max_tokens: int = 16384,
    max_pairs: int = 512,
    device: torch.device | str = "cpu",
    progress: bool = True,
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray | None:
    """Scores of ``pairs`` (``(qid, pid)``) in input order, as float32.

    ``autocast_dtype`` (bf16/fp16) runs the encoder under autocast (the GPU path); a model
    cast with :func:`cast_for_inference` runs in its own dtype (the CPU path). The score
    head always runs in float32.

    Under ``torch.distributed`` every rank scores its share of the batches; rank 0 returns
    all scores, the other ranks return ``None``.
    """
    rank, world = _world()
    built = [template.build(queries.tokens(q), corpus.tokens(p)) for q, p in pairs]
    lengths = [len(ids) for ids, _ in built]
    if world > 1:  # small inputs: cap batches so that every rank gets a share
        max_pairs = max(1, min(max_pairs, -(-len(pairs) // world)))
    batches = make_batches(lengths, max_tokens, max_pairs)[rank::world]
    model.eval()
    idx_parts: list[np.ndarray] = []
    score_parts: list[np.ndarray] = []
    bar = tqdm(
        total=sum(len(b) for b in batches),
        desc=f"predict (rank {rank})" if world > 1 else "predict",
        unit=" pairs",
        disable=not progress,
        mininterval=2,
    )
    with fp32_score_head(model):
        for b in batches:
            s = _score_batch(model, template, [built[i] for i in b], device, autocast_dtype)
            idx_parts.append(b)
            score_parts.append(s.numpy().astype(np.float32))
            bar.update(len(b))
    bar.close()
    idx = np.concatenate(idx_parts) if idx_parts else np.zeros(0, dtype=np.int64)
    sc = np.concatenate(score_parts) if score_parts else np.zeros(0, dtype=np.float32)
    if world > 1:
        gathered: list = [None] * world if rank == 0 else None
        dist.gather_object((idx, sc), gathered, dst=0)
        if rank != 0:
            return None
        idx = np.concatenate([g[0] for g in gathered])
        sc = np.concatenate([g[1] for g in gathered])
    out = np.empty(len(pairs), dtype=np.float32)
    out[idx] = sc
    if len(np.unique(idx)) != len(pairs):
        raise RuntimeError("prediction lost pairs while gathering across ranks")
    return out
