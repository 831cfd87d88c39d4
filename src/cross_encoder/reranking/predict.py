"""Score query-passage pairs fast: pre-tokenized inputs, length-sorted batches under a
token budget, ``inference_mode``, sharded across ``torchrun`` ranks and gathered in input
order; bf16 weights on a CPU where that is fast, autocast on a GPU, the score head in float32
either way. On CUDA out-of-memory a batch is split and retried instead of failing the run."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from cross_encoder.io import InputError
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


# --------------------------------------------------------------------------- rerank a file


def rerank_file(model, data_args, training_args, template) -> None:
    """``--do_predict``: score the top ``--prediction_topk`` of each query of ``--test_file``
    and write ``qid\tpid\tscore`` (float32 text) to ``--prediction_save_path`` in test_file
    order; pairs whose ids are not in the tokenized files are skipped with a warning."""
    from cross_encoder.hardware import log_peak_gpu_memory
    from cross_encoder.io import iter_ranking, require_path, write_scores

    why = "with --do_predict"
    corpus = TokenizedCollection.load(
        require_path(data_args.corpus_file, "--corpus_file", why), data_args.corpus_id_file
    )
    queries = TokenizedCollection.load(
        require_path(data_args.test_query_file, "--test_query_file", why),
        data_args.test_query_id_file,
    )
    test_file = require_path(data_args.test_file, "--test_file", why)
    pairs = [(r.qid, r.pid) for r in iter_ranking(test_file, depth=data_args.prediction_topk)]
    bad_q = queries.check_ids(test_file, (q for q, _ in pairs), "query")
    bad_p = corpus.check_ids(test_file, (p for _, p in pairs), "passage")
    pairs = [(q, p) for q, p in pairs if q not in bad_q and p not in bad_p]
    logger.info("scoring %d pairs from %s", len(pairs), test_file)
    if training_args.backend == "openvino":
        scores, elapsed = _predict_openvino(model, training_args, template, queries, corpus, pairs)
    else:
        scores, elapsed = _predict_torch(model, training_args, template, queries, corpus, pairs)
    log_peak_gpu_memory("predict")
    if scores is None:  # not rank 0
        return
    logger.info(
        "scored %d pairs in %.2f s (%.1f pairs/s, all ranks)",
        len(pairs),
        elapsed,
        len(pairs) / max(elapsed, 1e-9),
    )
    if not np.isfinite(scores).all():
        raise RuntimeError("the model produced non-finite scores; nothing written")
    n = write_scores(
        data_args.prediction_save_path,
        ((q, p, float(s)) for (q, p), s in zip(pairs, scores, strict=True)),
    )
    logger.info("wrote %d scores to %s", n, data_args.prediction_save_path)


def _batch_budget(training_args) -> dict:
    """Length-sorted batches of at most this many tokens and pairs, for either backend."""
    return {
        "max_tokens": training_args.prediction_batch_tokens,
        "max_pairs": max(training_args.per_device_eval_batch_size, 1),
    }


def _predict_openvino(model, training_args, template, queries, corpus, pairs):
    """``--backend openvino``: one process on the CPU, at the precision ``--precision``
    names; ``auto`` is this package's choice for the CPU (bf16 where AMX is confirmed by
    timing, else fp32), not OpenVINO's own, which takes bf16 from the CPU flags alone."""
    import torch.distributed as dist

    from cross_encoder.reranking import openvino as openvino_backend

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise InputError(None, "--backend openvino runs in one process: drop torchrun (nproc 1)")
    if training_args.device.type != "cpu":
        logger.warning("--backend openvino runs on the CPU, not on %s", training_args.device)
    if training_args.device.type == "cpu":  # --precision as arguments resolved it here
        precision = "bf16" if training_args.bf16 else "fp32"
    else:  # the flags describe the GPU: take this CPU's own choice
        from cross_encoder import hardware

        precision = hardware.resolve("auto", "cpu")
    scorer = openvino_backend.compile_model(model.cpu(), template, precision=precision)
    logger.info("predict precision: OpenVINO %s, fp32 score head", scorer.precision)
    start = time.perf_counter()
    scores = openvino_backend.score_pairs(
        scorer,
        template,
        queries,
        corpus,
        pairs,
        **_batch_budget(training_args),
        progress=not training_args.disable_tqdm,
    )
    return scores, time.perf_counter() - start


def _predict_torch(model, training_args, template, queries, corpus, pairs):
    import torch

    model.to(training_args.device)
    autocast_dtype = None
    if training_args.device.type == "cuda" and (training_args.bf16 or training_args.fp16):
        autocast_dtype = torch.bfloat16 if training_args.bf16 else torch.float16
    elif training_args.device.type == "cpu" and training_args.bf16:
        # --precision auto chose bf16 (an AMX CPU) or it was asked for: bf16 weights, the
        # score head in float32 (3.7x fp32 here, against 3.1x for autocast).
        cast_for_inference(model, torch.bfloat16)
    logger.info(
        "predict precision: %s",
        {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}.get(autocast_dtype)
        or ("bf16 weights, fp32 score head" if training_args.bf16 else "fp32"),
    )
    start = time.perf_counter()
    scores = score_pairs(
        model,
        template,
        queries,
        corpus,
        pairs,
        **_batch_budget(training_args),
        device=training_args.device,
        autocast_dtype=autocast_dtype,
    )
    return scores, time.perf_counter() - start
