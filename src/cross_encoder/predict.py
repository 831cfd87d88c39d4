"""Score query-passage pairs fast: pre-tokenized inputs, length-sorted batches under a
token budget, ``inference_mode``, sharded across ``torchrun`` ranks and gathered in input
order. On CUDA out-of-memory a batch is split and retried instead of failing the run.

For BERT-style classifiers (``BertForSequenceClassification``) a lean forward is used:
SDPA attention without a mask when a batch has no padding, fused Q/K/V projections, and in
the last layer only the ``[CLS]`` row is computed past the key/value projections (the
classifier reads nothing else), which saves ~14% of the FLOPs of a 6-layer model. It is
checked against the model's own forward on the first batch and abandoned, with a warning,
if it disagrees or fails; any other model runs its own forward."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from .collection import TokenizedCollection
from .data import PairTemplate

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


class LeanBertForward:
    """Scores of a ``BertForSequenceClassification`` in eval mode, computing only what the
    classifier reads. Build with :meth:`for_model`, which returns ``None`` for models it does
    not cover."""

    def __init__(self, model):
        self.model = model
        bert = model.bert
        self.layers = []
        for layer in bert.encoder.layer:
            sa = layer.attention.self
            w = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]).detach()
            b = torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]).detach()
            self.layers.append((layer, sa, w, b))

    @classmethod
    def for_model(cls, model) -> LeanBertForward | None:
        config = getattr(model, "config", None)
        if type(model).__name__ != "BertForSequenceClassification" or config is None:
            return None
        bert = getattr(model, "bert", None)
        if (
            bert is None
            or bert.pooler is None
            or getattr(config, "is_decoder", False)
            or getattr(config, "add_cross_attention", False)
            or getattr(config, "position_embedding_type", "absolute") != "absolute"
        ):
            return None
        try:
            for layer in bert.encoder.layer:
                sa = layer.attention.self
                for lin in (sa.query, sa.key, sa.value):
                    if not isinstance(lin, torch.nn.Linear) or lin.bias is None:
                        return None
                _ = (layer.attention.output, layer.intermediate, layer.output, sa.scaling)
        except AttributeError:
            return None
        return cls(model)

    @torch.inference_mode()
    def __call__(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        bert = self.model.bert
        h = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        n, width, hidden = h.shape
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]
        last = len(self.layers) - 1
        for i, (layer, sa, w, b) in enumerate(self.layers):
            heads, size = sa.num_attention_heads, sa.attention_head_size
            if i < last:
                qkv = F.linear(h, w, b).view(n, width, 3, heads, size).permute(2, 0, 3, 1, 4)
                q, k, v = qkv[0], qkv[1], qkv[2]
                x = h
            else:  # only [CLS] is read by the pooler: one query row, keys/values for all
                x = h[:, :1]
                q = F.linear(x, w[:hidden], b[:hidden]).view(n, 1, heads, size).transpose(1, 2)
                kv = F.linear(h, w[hidden:], b[hidden:]).view(n, width, 2, heads, size)
                kv = kv.permute(2, 0, 3, 1, 4)
                k, v = kv[0], kv[1]
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=sa.scaling)
            ctx = ctx.transpose(1, 2).reshape(n, -1, heads * size)
            a = layer.attention.output(ctx, x)
            h = layer.output(layer.intermediate(a), a)
        pooled = bert.pooler(h)
        return self.model.classifier(self.model.dropout(pooled))


class _Scorer:
    """The model's forward, or the lean one once it has matched the model's on real input."""

    def __init__(self, model, fast: bool):
        self.model = model
        self.lean = LeanBertForward.for_model(model) if fast else None
        self.checked = False

    @torch.inference_mode()
    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.lean is not None and not self.checked:
            self._check(batch)
        if self.lean is not None:
            return self.lean(**batch)
        return self.model(**batch).logits

    def _check(self, batch: dict[str, torch.Tensor]) -> None:
        self.checked = True
        few = {k: v[-4:] for k, v in batch.items()}  # the shortest rows: padding included
        try:
            ref = self.model(**few).logits.float()
            got = self.lean(**few).float()
            ok = got.shape == ref.shape and bool(
                torch.allclose(got, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(ref.abs().max())))
            )
            why = "its scores differ from the model's forward"
        except Exception as e:  # noqa: BLE001 - any failure means: use the model's forward
            ok, why = False, f"{type(e).__name__}: {e}"
        if not ok:
            logger.warning("lean BERT forward disabled (%s); using the model's forward", why)
            self.lean = None


def _forward(scorer: _Scorer, template: PairTemplate, pairs, device) -> torch.Tensor:
    batch = {k: v.to(device, non_blocking=True) for k, v in template.pad(pairs).items()}
    logits = scorer(batch)
    return logits.float().reshape(len(pairs), -1)[:, 0].cpu()


def _score_batch(model, template, pairs, device) -> torch.Tensor:
    try:
        return _forward(model, template, pairs, device)
    except torch.cuda.OutOfMemoryError:
        if len(pairs) == 1:
            raise
        torch.cuda.empty_cache()
        half = len(pairs) // 2
        logger.warning("CUDA out of memory on %d pairs: splitting the batch", len(pairs))
        return torch.cat(
            [
                _score_batch(model, template, pairs[:half], device),
                _score_batch(model, template, pairs[half:], device),
            ]
        )


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
    fast: bool = True,
) -> np.ndarray | None:
    """Scores of ``pairs`` (``(qid, pid)``) in input order, as float32.

    Under ``torch.distributed`` every rank scores its share of the batches; rank 0 returns
    all scores, the other ranks return ``None``. ``fast=False`` always runs the model's own
    forward (see the module docstring for what the lean BERT forward does).
    """
    rank, world = _world()
    built = [template.build(queries.tokens(q), corpus.tokens(p)) for q, p in pairs]
    lengths = [len(ids) for ids, _ in built]
    batches = make_batches(lengths, max_tokens, max_pairs)[rank::world]
    model.eval()
    scorer = _Scorer(model, fast)
    idx_parts: list[np.ndarray] = []
    score_parts: list[np.ndarray] = []
    bar = tqdm(
        total=sum(len(b) for b in batches),
        desc=f"predict (rank {rank})" if world > 1 else "predict",
        unit=" pairs",
        disable=not progress,
        mininterval=2,
    )
    for b in batches:
        s = _score_batch(scorer, template, [built[i] for i in b], device)
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
