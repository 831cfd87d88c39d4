"""The predict step of ``cross_encoder.run`` (``--do_predict``): read a first-stage ranking
into two int32 arrays of collection rows (8 bytes a pair), score its top-k chunk by chunk
with the torch engine (:mod:`.predict`) or OpenVINO (:mod:`.openvino`), and stream
``qid\tpid\tscore`` in input order into one atomic file. With ``--prediction_shard i/k`` a
job scores its share of the chunks; the shards' files concatenated are the one-job file."""

from __future__ import annotations

import array
import logging
import time

import numpy as np

from cross_encoder.io import InputError, PathLike, atomic_write, iter_ranking
from cross_encoder.io.cli import parse_shard
from cross_encoder.io.collection import TokenizedCollection

logger = logging.getLogger(__name__)

# Pairs per block when reading a ranking and when writing scores.
BLOCK = 1 << 16


def ranking_rows(
    path: PathLike,
    depth: int | None,
    queries: TokenizedCollection,
    corpus: TokenizedCollection,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``path`` (:func:`cross_encoder.io.iter_ranking` at ``depth``) as int32 row
    indices into ``queries`` and ``corpus``, in file order. Pairs with an id that is not in its
    collection are skipped with a warning (one per kind); none known is an error, as
    :meth:`TokenizedCollection.check_ids` says. The whole file is read (and checked) before
    anything is scored: bad input anywhere fails in seconds, naming file and line."""
    qrows, prows = array.array("i"), array.array("i")
    q_row, p_row = queries.row, corpus.row
    missing: dict[str, dict[str, None]] = {"query": {}, "passage": {}}
    found = {"query": False, "passage": False}
    for r in iter_ranking(path, depth=depth):
        qr, pr = q_row.get(r.qid, -1), p_row.get(r.pid, -1)
        if qr < 0:
            missing["query"][r.qid] = None
        else:
            found["query"] = True
        if pr < 0:
            missing["passage"][r.pid] = None
        else:
            found["passage"] = True
        if qr >= 0 and pr >= 0:
            qrows.append(qr)
            prows.append(pr)
    for what, coll in (("query", queries), ("passage", corpus)):
        ids = missing[what]
        if ids and not found[what]:
            raise InputError(
                path,
                f"none of its {what} ids are in {coll.path} (e.g. {next(iter(ids))!r}); "
                "check that the files belong together",
            )
        if ids:
            logger.warning("%s: %d %s ids are not in %s; skipped", path, len(ids), what, coll.path)
    return np.frombuffer(qrows, dtype=np.int32), np.frombuffer(prows, dtype=np.int32)


def write_chunk(f, queries, corpus, qrows, prows, scores) -> None:
    """``qid\tpid\tscore`` lines of one chunk, in input order (the text of
    :func:`cross_encoder.io.write_scores`: ``repr`` of the float32 score as a Python float)."""
    qids, pids = queries.ids, corpus.ids
    for lo in range(0, len(scores), BLOCK):
        hi = lo + BLOCK
        f.write(
            "".join(
                f"{qids[q]}\t{pids[p]}\t{s!r}\n"
                for q, p, s in zip(
                    qrows[lo:hi].tolist(),
                    prows[lo:hi].tolist(),
                    scores[lo:hi].astype(np.float64).tolist(),
                    strict=True,
                )
            )
        )


def rerank_file(model, data_args, training_args, template, model_args) -> None:
    """``--do_predict``: score the top ``--prediction_topk`` of each query of ``--test_file``
    and write ``qid\tpid\tscore`` (float32 text) to ``--prediction_save_path`` in test_file
    order, chunk by chunk as the scores are ready (atomically: the file appears whole or not
    at all); pairs whose ids are not in the tokenized files are skipped with a warning."""
    from cross_encoder.hardware import log_peak_gpu_memory
    from cross_encoder.io import require_path
    from cross_encoder.modeling.pairs import PairBuilder
    from cross_encoder.reranking.predict import _world, chunk_range

    why = "with --do_predict"
    corpus = TokenizedCollection.load(
        require_path(data_args.corpus_file, "--corpus_file", why), data_args.corpus_id_file
    )
    queries = TokenizedCollection.load(
        require_path(data_args.test_query_file, "--test_query_file", why),
        data_args.test_query_id_file,
    )
    test_file = require_path(data_args.test_file, "--test_file", why)
    start = time.perf_counter()
    qrows, prows = ranking_rows(test_file, data_args.prediction_topk, queries, corpus)
    logger.info(
        "read %d pairs from %s in %.1f s", len(qrows), test_file, time.perf_counter() - start
    )
    shard = parse_shard(training_args.prediction_shard)
    chunk_pairs = training_args.prediction_chunk_pairs
    chunks = chunk_range(len(qrows), chunk_pairs, shard)
    n = sum(min(len(qrows), (c + 1) * chunk_pairs) - c * chunk_pairs for c in chunks)
    logger.info(
        "scoring %d pairs from %s%s",
        n,
        test_file,
        f" (shard {shard[0]} of {shard[1]}: {len(chunks)} chunks of {chunk_pairs} pairs, of "
        f"{len(qrows)} pairs in all)"
        if shard[1] > 1
        else "",
    )
    builder = PairBuilder(template, queries, corpus)
    from cross_encoder.reranking.quantize import PROBE_PAIRS, scorer_for_predict

    # int8 (accepted on dev), or the full-precision backend (under quantize auto the faster
    # of torch and OpenVINO here), with the OpenVINO model the choice compiled
    probe = [
        (queries.ids[q], corpus.ids[p])
        for q, p in zip(qrows[:PROBE_PAIRS], prows[:PROBE_PAIRS], strict=True)
    ]
    compiled, backend = scorer_for_predict(
        model, model_args, data_args, training_args, template, (queries, corpus, probe)
    )
    if compiled is not None:
        if backend != "int8":
            logger.info("predict precision: OpenVINO %s, fp32 score head", compiled.precision)
        scored, finish = _predict_compiled(compiled, training_args, builder, f"predict ({backend})")
    elif backend == "openvino":
        scored, finish = _predict_openvino(model, training_args, template, builder)
    else:
        scored, finish = _predict_torch(model, training_args, builder)
    start = time.perf_counter()
    stream = scored(qrows, prows, chunks)
    rank = _world()[0]
    if rank != 0:
        for _ in stream:  # score this rank's share of every chunk; rank 0 writes
            pass
        finish()
        log_peak_gpu_memory("predict")
        return
    written = 0
    with atomic_write(data_args.prediction_save_path) as f:
        for lo, scores in stream:
            if not np.isfinite(scores).all():
                raise RuntimeError("the model produced non-finite scores; nothing written")
            hi = lo + len(scores)
            write_chunk(f, queries, corpus, qrows[lo:hi], prows[lo:hi], scores)
            written += len(scores)
    finish()
    elapsed = time.perf_counter() - start
    log_peak_gpu_memory("predict")
    logger.info(
        "scored %d pairs in %.2f s (%.1f pairs/s, all ranks)",
        written,
        elapsed,
        written / max(elapsed, 1e-9),
    )
    logger.info("wrote %d scores to %s", written, data_args.prediction_save_path)


def _batch_budget(training_args) -> dict:
    """Length-sorted batches of at most this many padded tokens (and, when
    ``--prediction_batch_pairs`` > 0, pairs), chunk by chunk, for either backend."""
    return {
        "max_tokens": training_args.prediction_batch_tokens,
        "max_pairs": training_args.prediction_batch_pairs,
        "chunk_pairs": training_args.prediction_chunk_pairs,
        "progress": not training_args.disable_tqdm,
    }


def _predict_openvino(model, training_args, template, builder):
    """``--backend openvino``: one process on the CPU, at the precision ``--precision``
    names; ``auto`` is this package's choice for the CPU (bf16 where AMX is confirmed by
    timing, else fp32), not OpenVINO's own, which takes bf16 from the CPU flags alone.
    Returns ``(scored(qrows, prows, chunks) -> (start, scores) per chunk, finish())``."""
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
    scorer = openvino_backend.compile_model(
        model.cpu(), template, precision=precision, hint="THROUGHPUT"
    )
    logger.info("predict precision: OpenVINO %s, fp32 score head", scorer.precision)
    return _predict_compiled(scorer, training_args, builder, "predict (openvino)")


def _predict_compiled(scorer, training_args, builder, desc):
    """A compiled OpenVINO scorer (full precision, or the accepted int8 model of
    :mod:`.quantize`) through :func:`score_chunks`; returns as :func:`_predict_openvino`."""
    from cross_encoder.reranking import openvino as openvino_backend
    from cross_encoder.reranking.predict import score_chunks

    def scored(qrows, prows, chunks):
        return score_chunks(
            openvino_backend.batch_scorer(scorer, builder),
            builder,
            qrows,
            prows,
            chunks=chunks,
            desc=desc,
            **_batch_budget(training_args),
        )

    return scored, lambda: None


def _predict_torch(model, training_args, builder):
    """The torch engine on ``--device``, at ``--precision``; returns as
    :func:`_predict_openvino`."""
    import contextlib

    import torch

    from cross_encoder.reranking.predict import (
        cast_for_inference,
        inference_view,
        score_chunks,
        torch_scorer,
    )

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
    model.eval()
    stack = contextlib.ExitStack()
    stack.enter_context(inference_view(model))

    def scored(qrows, prows, chunks):
        return score_chunks(
            torch_scorer(model, builder, training_args.device, autocast_dtype),
            builder,
            qrows,
            prows,
            chunks=chunks,
            **_batch_budget(training_args),
        )

    return scored, stack.close
