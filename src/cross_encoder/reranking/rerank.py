"""The predict step of ``cross_encoder.run`` (``--do_predict``): read a first-stage ranking,
score its top-k with the torch engine (:mod:`.predict`) or OpenVINO (:mod:`.openvino`), and
write ``qid\tpid\tscore``."""

from __future__ import annotations

import logging
import time

import numpy as np

from cross_encoder.io import InputError
from cross_encoder.io.collection import TokenizedCollection

logger = logging.getLogger(__name__)


def rerank_file(model, data_args, training_args, template, model_args) -> None:
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
    from cross_encoder.reranking.quantize import scorer_for_predict

    int8 = scorer_for_predict(model, model_args, data_args, training_args, template)
    if int8 is not None:
        scores, elapsed = _predict_int8(int8, training_args, template, queries, corpus, pairs)
    elif training_args.backend == "openvino":
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


def _predict_int8(scorer, training_args, template, queries, corpus, pairs):
    """``--quantize`` chose the accepted int8 model (:mod:`.quantize`)."""
    from cross_encoder.reranking.openvino import score_pairs

    start = time.perf_counter()
    kw = _batch_budget(training_args)
    scores = score_pairs(scorer, template, queries, corpus, pairs, **kw, progress=False)
    return scores, time.perf_counter() - start


def _predict_torch(model, training_args, template, queries, corpus, pairs):
    import torch

    from cross_encoder.reranking.predict import cast_for_inference, score_pairs

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
