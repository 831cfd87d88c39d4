"""Ranking metrics with the official MS MARCO conventions, computed with ``ir_measures``.

* A run is ordered per query by score, descending, **stable** in file order (as
  ``msmarco_eval.py`` does); that order is then handed to ``ir_measures`` as ranks, so its
  own tie-breaking (by document id) never changes a result.
* Averages are over the queries **in the qrels** that have a relevant passage: a judged
  query the run does not rank counts 0 (MS MARCO's MRR), rather than being left out
  (trec_eval's default).
* MRR@k = mean reciprocal rank of the first relevant passage within k;
  Recall@k = mean |relevant ∩ top-k| / |relevant|; nDCG@k with graded relevance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ir_measures
from ir_measures import Qrel, ScoredDoc

DEFAULT_METRICS = ("MRR@10", "nDCG@10", "Recall@10", "Recall@50", "Recall@100", "Recall@1000")

_NAMES = {"MRR": "RR", "Recall": "R", "nDCG": "nDCG", "P": "P", "MAP": "AP"}


def to_ir_measure(name: str):
    """``MRR@10`` -> ``RR@10``, ``Recall@100`` -> ``R@100``, ``nDCG@10`` -> ``nDCG@10``."""
    base, _, cutoff = name.partition("@")
    if base not in _NAMES:
        raise ValueError(f"unknown metric {name!r}; use one of {', '.join(_NAMES)} with @k")
    measure = getattr(ir_measures, _NAMES[base])
    return measure @ int(cutoff) if cutoff else measure


def order_run(run: Mapping[str, Mapping[str, float]]) -> dict[str, list[str]]:
    """Per query, pids by score descending, ties in insertion (file) order."""
    return {q: sorted(d, key=lambda p, d=d: -d[p]) for q, d in run.items()}


def per_query(
    qrels: Mapping[str, Mapping[str, int]],
    ranking: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, dict[str, float]]:
    """``metric -> {qid: value}`` for every judged query (0 where the run has none)."""
    judged = [q for q, d in qrels.items() if any(r > 0 for r in d.values())]
    qrel_list = [Qrel(q, p, int(r)) for q, d in qrels.items() for p, r in d.items()]
    scored = [
        ScoredDoc(q, p, float(len(pids) - i))
        for q, pids in ranking.items()
        if q in qrels
        for i, p in enumerate(pids)
    ]
    out: dict[str, dict[str, float]] = {m: dict.fromkeys(judged, 0.0) for m in metrics}
    measures = {to_ir_measure(m): m for m in metrics}
    for res in ir_measures.iter_calc(list(measures), qrel_list, scored):
        name = measures[res.measure]
        if res.query_id in out[name]:
            out[name][res.query_id] = float(res.value)
    return out


def evaluate_ranking(
    qrels: Mapping[str, Mapping[str, int]],
    ranking: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over the judged queries (see module docstring)."""
    return mean(per_query(qrels, ranking, metrics))


def mean(pq: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each metric's mean over the queries of :func:`per_query` (0 for none): the one
    average every table, the dev selection and the fusion tuning report."""
    return {m: (sum(v.values()) / len(v) if v else 0.0) for m, v in pq.items()}
