"""Rerank a dev ranking's top-k with the current weights and score the result.

:class:`RerankEvaluator` reranks the top-k of a dev first-stage ranking and scores the result
with the workflow's own evaluation code (:func:`cross_encoder.evaluation.metrics.per_query` on
the pure reranked run: cross-encoder order over the top-k, then the first stage's tail), so the
number it reports is the number the ``eval`` table reports. A fixed, seeded sample of the
judged dev queries keeps it cheap on a large dev set. Model selection during training
(:mod:`cross_encoder.training.selection`) and the int8 dev guard
(:mod:`cross_encoder.reranking.quantize`) both use it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import torch
import torch.distributed as dist

from cross_encoder.evaluation.metrics import mean, per_query, to_ir_measure
from cross_encoder.io import InputError, read_qrels, read_ranking
from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairTemplate
from cross_encoder.reranking.fusion import full_run
from cross_encoder.reranking.predict import score_pairs

logger = logging.getLogger(__name__)


class RerankEvaluator:
    """Rerank a dev ranking's top-k and compute ranking metrics against its qrels."""

    def __init__(
        self,
        queries: TokenizedCollection,
        corpus: TokenizedCollection,
        ranking_path: str,
        qrels_path: str,
        template: PairTemplate,
        topk: int,
        metrics: Sequence[str] = ("MRR@10", "nDCG@10"),
        max_queries: int = 0,
        seed: int = 42,
        max_tokens: int = 16384,
        max_pairs: int = 0,
    ):
        for m in metrics:
            try:
                to_ir_measure(m)
            except ValueError as e:
                raise InputError(None, f"--eval_metrics: {e}") from None
        self.metrics = list(metrics)
        self.template = template
        self.queries, self.corpus = queries, corpus
        self.max_tokens, self.max_pairs = max_tokens, max_pairs
        qrels = read_qrels(qrels_path)
        ranking = read_ranking(ranking_path)
        judged = [
            q
            for q, d in qrels.items()
            if any(r > 0 for r in d.values()) and q in ranking and q in queries
        ]
        if not judged:
            raise InputError(
                ranking_path,
                f"ranks none of the judged queries of {qrels_path} that are in {queries.path}; "
                "check that the dev files belong together",
            )
        if max_queries and len(judged) > max_queries:
            judged = sorted(random.Random(seed).sample(judged, max_queries), key=judged.index)
        self.qrels = {q: qrels[q] for q in judged}
        self.ranking = {q: ranking[q] for q in judged}
        self.pairs = [(q, p) for q in judged for p in ranking[q][:topk] if p in corpus]
        logger.info(
            "model selection: %d dev queries x top-%d = %d pairs (%s)",
            len(judged),
            topk,
            len(self.pairs),
            ", ".join(self.metrics),
        )

    def __call__(self, model, device, autocast_dtype: torch.dtype | None = None) -> dict:
        """``{metric: mean}`` on every rank (rank 0 computes, the others receive it)."""
        was_training = model.training
        scores = score_pairs(
            model,
            self.template,
            self.queries,
            self.corpus,
            self.pairs,
            max_tokens=self.max_tokens,
            max_pairs=self.max_pairs,
            device=device,
            progress=False,
            autocast_dtype=autocast_dtype,
        )
        model.train(was_training)
        result = [None]
        if scores is not None:  # rank 0
            by_query: dict[str, dict[str, float]] = {}
            for (q, p), s in zip(self.pairs, scores, strict=True):
                by_query.setdefault(q, {})[p] = float(s)
            run = {q: [p for p, _ in v] for q, v in full_run(by_query, self.ranking).items()}
            pq = per_query(self.qrels, run, self.metrics)
            result = [mean(pq)]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast_object_list(result, src=0)
        return result[0]
