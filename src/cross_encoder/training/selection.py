"""Model selection on dev while the cross-encoder trains.

:func:`build_evaluator` sets up :class:`~cross_encoder.reranking.evaluator.RerankEvaluator`
(rerank the top-k of a dev first-stage ranking with the current weights, scored by the
workflow's own evaluation code), so the number that picks the checkpoint is the number the
``eval`` table reports.

The trainer calls it every ``eval_steps`` and at the end of each epoch; with
``load_best_model_at_end`` the best checkpoint becomes the final model (HF ``Trainer`` keeps it
out of checkpoint rotation and records it in ``trainer_state.json``, so a resumed run knows it).
"""

from __future__ import annotations

import logging

from cross_encoder.io import InputError, require_path
from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.reranking.evaluator import RerankEvaluator

logger = logging.getLogger(__name__)


def build_evaluator(data_args, training_args, corpus, template):
    """The dev reranking that selects the checkpoint (None without --eval_file)."""
    from transformers.trainer_utils import IntervalStrategy

    if not data_args.eval_file:
        logger.warning(
            "no dev ranking and qrels (--eval_query_file/--eval_file/--eval_qrels): the final "
            "model is the last checkpoint, not one selected on dev"
        )
        return None
    why = "with --eval_file"
    queries = TokenizedCollection.load(
        require_path(data_args.eval_query_file, "--eval_query_file", why),
        data_args.eval_query_id_file,
    )
    evaluator = RerankEvaluator(
        queries,
        corpus,
        require_path(data_args.eval_file, "--eval_file", why),
        require_path(data_args.eval_qrels, "--eval_qrels", why),
        template,
        topk=data_args.eval_topk,
        metrics=[m.strip() for m in data_args.eval_metrics.split(",") if m.strip()],
        max_queries=data_args.eval_max_queries,
        seed=training_args.seed,
        max_tokens=training_args.prediction_batch_tokens,
        max_pairs=training_args.prediction_batch_pairs,
    )
    if training_args.eval_strategy == IntervalStrategy.NO:
        logger.info("--eval_file without --eval_strategy: evaluating at the end of each epoch")
        training_args.eval_strategy = IntervalStrategy.EPOCH
    if training_args.metric_for_best_model in (None, "loss", "eval_loss"):
        training_args.metric_for_best_model = evaluator.metrics[0]
        training_args.greater_is_better = True
    if training_args.metric_for_best_model.removeprefix("eval_") not in evaluator.metrics:
        raise InputError(
            None,
            f"--metric_for_best_model {training_args.metric_for_best_model} is not one of "
            f"--eval_metrics {data_args.eval_metrics}",
        )
    return evaluator
