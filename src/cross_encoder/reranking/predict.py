"""Score query-passage pairs fast and in bounded memory: a ranking is two int32 arrays of row
indices into the tokenized collections (8 bytes a pair), scored chunk by chunk (length-sorted
batches under a token budget within each chunk, each batch padded straight from the
collections' flat token arrays), ``inference_mode``, sharded across ``torchrun`` ranks and
gathered per chunk in input order; bf16 weights on a CPU where that is fast, autocast on a GPU,
the score head in float32 either way. On CUDA out-of-memory a batch is split and retried
instead of failing the run."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairBuilder, PairTemplate  # noqa: F401  (old path)

logger = logging.getLogger(__name__)

# Pairs per chunk when scoring a ranking: the length sort, the scores kept before writing and
# the gather across ranks cover one chunk at a time (16 bytes a pair), so memory does not grow
# with the ranking. A ranking of at most this many pairs is one chunk: the batches of the
# one-shot scoring, byte for byte.
CHUNK_PAIRS = 1_000_000


def make_batches(lengths: Sequence[int], max_tokens: int, max_pairs: int = 0) -> list[np.ndarray]:
    """Group indices, longest first, so that ``len(batch) * longest <= max_tokens`` and, when
    ``max_pairs`` > 0, ``len(batch) <= max_pairs`` (a batch holds at least one pair)."""
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    cap = max_pairs if max_pairs > 0 else len(order)
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        width = int(lengths[order[start]])
        size = max(1, min(cap, max_tokens // max(1, width)))
        batches.append(order[start : start + size])
        start += size
    return batches


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.inference_mode()
def _forward(model, builder: PairBuilder, qrows, prows, device, dtype=None) -> torch.Tensor:
    batch = {k: v.to(device, non_blocking=True) for k, v in builder.pad(qrows, prows).items()}
    device_type = torch.device(device).type
    with torch.autocast(device_type=device_type, dtype=dtype, enabled=dtype is not None):
        logits = model(**batch).logits
    return logits.float().reshape(len(qrows), -1)[:, 0].cpu()


def _score_batch(model, builder, qrows, prows, device, dtype=None) -> torch.Tensor:
    try:
        return _forward(model, builder, qrows, prows, device, dtype)
    except torch.cuda.OutOfMemoryError:
        if len(qrows) == 1:
            raise
        torch.cuda.empty_cache()
        half = len(qrows) // 2
        logger.warning("CUDA out of memory on %d pairs: splitting the batch", len(qrows))
        return torch.cat(
            [
                _score_batch(model, builder, qrows[:half], prows[:half], device, dtype),
                _score_batch(model, builder, qrows[half:], prows[half:], device, dtype),
            ]
        )


def chunk_range(n_pairs: int, chunk_pairs: int, shard: tuple[int, int] = (1, 1)) -> range:
    """The chunks (indices) that shard ``i`` of ``k`` (1-based) scores: a contiguous share of
    the ``ceil(n_pairs / chunk_pairs)`` chunks, so that the shards' outputs, concatenated in
    order, are the one-job output byte for byte."""
    i, k = shard
    n_chunks = math.ceil(n_pairs / max(1, chunk_pairs))
    return range((i - 1) * n_chunks // k, i * n_chunks // k)


def score_chunks(
    score_batch: Callable[[np.ndarray, np.ndarray], np.ndarray],
    builder: PairBuilder,
    qrows: np.ndarray,
    prows: np.ndarray,
    max_tokens: int = 16384,
    max_pairs: int = 0,
    chunk_pairs: int = CHUNK_PAIRS,
    chunks: range | None = None,
    progress: bool = True,
    desc: str = "predict",
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Score the pairs ``(qrows[i], prows[i])`` chunk by chunk: yields ``(start, scores)``
    per chunk in input order (float32; ``None`` on ranks other than 0 under
    ``torch.distributed``, where every rank scores its share of each chunk's batches).

    ``score_batch(qrows, prows)`` scores one batch (float32 numpy, or a handle whose
    ``.result()`` gives them, resolved at the end of the chunk); ``max_pairs`` 0: the token
    budget alone sizes a batch. ``chunks``: which chunks (default all; :func:`chunk_range`).
    """
    rank, world = _world()
    n = len(qrows)
    chunk_pairs = max(1, chunk_pairs)
    chunks = range(math.ceil(n / chunk_pairs)) if chunks is None else chunks
    total = sum(min(n, (c + 1) * chunk_pairs) - c * chunk_pairs for c in chunks)
    bar = tqdm(
        total=total,
        desc=f"{desc} (rank {rank})" if world > 1 else desc,
        unit=" pairs",
        disable=not progress,
        mininterval=2,
    )
    with bar:
        for c in chunks:
            lo, hi = c * chunk_pairs, min(n, (c + 1) * chunk_pairs)
            qr, pr = qrows[lo:hi], prows[lo:hi]
            cap = max_pairs
            if world > 1:  # small chunks: cap batches so that every rank gets a share
                share = -(-(hi - lo) // world)
                cap = min(cap, share) if cap > 0 else share
            batches = make_batches(builder.lengths(qr, pr), max_tokens, cap)[rank::world]
            idx_parts: list[np.ndarray] = []
            score_parts: list[np.ndarray] = []
            for b in batches:
                score_parts.append(score_batch(qr[b], pr[b]))
                idx_parts.append(b)
                bar.update(len(b))
            # a batch scored asynchronously (OpenVINO's THROUGHPUT streams) gives a handle
            score_parts = [
                np.asarray(s.result() if hasattr(s, "result") else s, dtype=np.float32)
                for s in score_parts
            ]
            idx = np.concatenate(idx_parts) if idx_parts else np.zeros(0, dtype=np.int64)
            sc = np.concatenate(score_parts) if score_parts else np.zeros(0, dtype=np.float32)
            if world > 1:
                gathered: list = [None] * world if rank == 0 else None
                dist.gather_object((idx, sc), gathered, dst=0)
                if rank != 0:
                    yield lo, None
                    continue
                idx = np.concatenate([g[0] for g in gathered])
                sc = np.concatenate([g[1] for g in gathered])
            if len(idx) != hi - lo or len(np.unique(idx)) != hi - lo:
                raise RuntimeError("prediction lost pairs while gathering across ranks")
            out = np.empty(hi - lo, dtype=np.float32)
            out[idx] = sc
            yield lo, out


def torch_scorer(
    model, builder: PairBuilder, device="cpu", autocast_dtype: torch.dtype | None = None
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``score_batch`` for :func:`score_chunks`: the torch model (call it inside
    :func:`inference_view` and after ``model.eval()``)."""

    def score(qrows: np.ndarray, prows: np.ndarray) -> np.ndarray:
        return _score_batch(model, builder, qrows, prows, device, autocast_dtype).numpy()

    return score


class _Flat:
    """The flat token arrays of the collection entries ``keys`` (for :func:`score_pairs`
    given collections that only have ``tokens(key)``)."""

    def __init__(self, coll, keys: Sequence[str]):
        self.row: Mapping[str, int] = {k: r for r, k in enumerate(dict.fromkeys(keys))}
        toks = [np.asarray(coll.tokens(k), dtype=np.int32) for k in self.row]
        self.offsets = np.zeros(len(toks) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum([len(t) for t in toks])
        self.values = np.concatenate(toks) if toks else np.zeros(0, dtype=np.int32)


def pair_rows(coll, keys: Sequence[str]):
    """``(collection with flat arrays, int32 rows of keys)``: the collection itself when it
    is a :class:`TokenizedCollection`, else a flat copy of the entries used."""
    if not isinstance(coll, TokenizedCollection):
        coll = _Flat(coll, keys)
    return coll, np.fromiter((coll.row[k] for k in keys), dtype=np.int32, count=len(keys))


def score_pairs(
    model,
    template: PairTemplate,
    queries: TokenizedCollection,
    corpus: TokenizedCollection,
    pairs: Sequence[tuple[str, str]],
    max_tokens: int = 16384,
    max_pairs: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    autocast_dtype: torch.dtype | None = None,
    chunk_pairs: int | None = None,
) -> np.ndarray | None:
    """Scores of ``pairs`` (``(qid, pid)``) in input order, as float32.

    ``autocast_dtype`` (bf16/fp16) runs the encoder under autocast (the GPU path); a model
    cast with :func:`cast_for_inference` runs in its own dtype (the CPU path). The score
    head always runs in float32. ``max_pairs`` caps the pairs of a batch (0: the token budget
    alone); ``chunk_pairs`` (default: all pairs in one chunk) as in :func:`score_chunks`.

    Under ``torch.distributed`` every rank scores its share of the batches; rank 0 returns
    all scores, the other ranks return ``None``.
    """
    model.eval()
    with inference_view(model):
        out = score_pair_list(
            lambda builder: torch_scorer(model, builder, device, autocast_dtype),
            template,
            queries,
            corpus,
            pairs,
            max_tokens,
            max_pairs,
            chunk_pairs,
            progress,
        )
    if _world()[0] != 0:
        return None
    return out


def score_pair_list(
    make_score_batch: Callable[[PairBuilder], Callable[[np.ndarray, np.ndarray], np.ndarray]],
    template: PairTemplate,
    queries,
    corpus,
    pairs: Sequence[tuple[str, str]],
    max_tokens: int = 16384,
    max_pairs: int = 0,
    chunk_pairs: int | None = None,
    progress: bool = True,
    desc: str = "predict",
) -> np.ndarray:
    """Scores of ``pairs`` (``(qid, pid)``) in input order, as float32, by the engine that
    ``make_score_batch(builder)`` returns (torch or OpenVINO): the list form of
    :func:`score_chunks`, shared by both backends' ``score_pairs``. Entries a rank does not
    score (other ranks' batches) stay unset."""
    queries, qrows = pair_rows(queries, [q for q, _ in pairs])
    corpus, prows = pair_rows(corpus, [p for _, p in pairs])
    builder = PairBuilder(template, queries, corpus)
    out = np.empty(len(pairs), dtype=np.float32)
    for lo, sc in score_chunks(
        make_score_batch(builder),
        builder,
        qrows,
        prows,
        max_tokens,
        max_pairs,
        chunk_pairs or max(1, len(pairs)),
        progress=progress,
        desc=desc,
    ):
        if sc is not None:
            out[lo : lo + len(sc)] = sc
    return out


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


@contextlib.contextmanager
def inference_view(model):
    """The model as reranking runs it: the score head in float32 (:func:`fp32_score_head`) and,
    where the architecture allows, the last layer computed for the first token only
    (:func:`cross_encoder.modeling.cls_only.first_token_only`: the same scores, less work)."""
    from cross_encoder.modeling.cls_only import first_token_only

    with fp32_score_head(model), first_token_only(model):
        yield


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
