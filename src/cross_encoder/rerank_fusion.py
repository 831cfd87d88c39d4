"""Complete a reranked run with the first stage's tail, and optionally fuse the
cross-encoder's ranking with the first stage's (the ``rerank.fuse_with_first_stage`` stage).

    python -m cross_encoder.rerank_fusion --scores dev.scores.tsv --ranking dev.hybrid.tsv \\
        --output_full dev.full.tsv [--method rrf --weight 1.0 --k 60 --output_fused dev.fused.tsv]

* ``--output_full``: the reranked top-k (cross-encoder order), then the rest of the first-stage
  ranking in its own order. This is the pure reranked run; Recall@k for k beyond the reranked
  depth counts the tail, as a reranker deployed on top of the first stage would return it.
* ``--output_fused`` (a separate, explicitly named run, never the "reranked" row):
  ``rrf``: score = weight / (k + rank_CE) + 1 / (k + rank_first) over the reranked top-k;
  ``interpolate``: score = weight * minmax(CE) + (1 - weight) * minmax(first-stage score),
  per query over the reranked top-k. The tail follows below in first-stage order either way.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence

from .io import (
    InputError,
    cli,
    iter_ranking,
    read_ranking,
    read_scores,
    setup_logging,
    write_ranking,
)

logger = logging.getLogger(__name__)

METHODS = ("none", "rrf", "interpolate")


def _minmax(values: Sequence[float]) -> list[float]:
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [0.0 for _ in values]
    return [(v - lo) / (hi - lo) for v in values]


def _with_tail(head: list[str], first: Sequence[str]) -> list[tuple[str, float]]:
    """``head`` in order, then ``first``'s other pids; scores are descending ranks."""
    seen = set(head)
    order = head + [p for p in first if p not in seen]
    n = len(order)
    return [(p, float(n - i)) for i, p in enumerate(order)]


def full_run(
    scores: Mapping[str, Mapping[str, float]], first: Mapping[str, Sequence[str]]
) -> dict[str, list[tuple[str, float]]]:
    """Reranked top-k by cross-encoder score (stable), then the first stage's tail."""
    out = {}
    for q in dict.fromkeys([*first, *scores]):
        s = scores.get(q, {})
        head = sorted(s, key=lambda p: -s[p])
        out[q] = _with_tail(head, first.get(q, []))
    return out


def fused_run(
    scores: Mapping[str, Mapping[str, float]],
    first: Mapping[str, Sequence[str]],
    first_scores: Mapping[str, Mapping[str, float]],
    method: str,
    weight: float,
    k: int = 60,
) -> dict[str, list[tuple[str, float]]]:
    """The reranked top-k reordered by a fusion of both rankings, then the tail."""
    if method not in METHODS[1:]:
        raise InputError(None, f"--method {method!r}: use one of {', '.join(METHODS[1:])}")
    out = {}
    for q in dict.fromkeys([*first, *scores]):
        s = scores.get(q, {})
        pids = list(s)
        if not pids:
            out[q] = _with_tail([], first.get(q, []))
            continue
        first_rank = {p: r for r, p in enumerate(first.get(q, []), start=1)}
        missing = len(first_rank) + 1
        if method == "rrf":
            ce_rank = {p: r for r, p in enumerate(sorted(pids, key=lambda p: -s[p]), start=1)}
            fused = {
                p: weight / (k + ce_rank[p]) + 1.0 / (k + first_rank.get(p, missing)) for p in pids
            }
        else:
            fs = first_scores.get(q, {})
            ce = _minmax([s[p] for p in pids])
            lo = min(fs.values()) if fs else 0.0
            fst = _minmax([fs.get(p, lo) for p in pids])
            parts = zip(pids, ce, fst, strict=True)
            fused = {p: weight * c + (1 - weight) * f for p, c, f in parts}
        head = sorted(pids, key=lambda p: (-fused[p], first_rank.get(p, missing)))
        out[q] = _with_tail(head, first.get(q, []))
    return out


@cli
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cross_encoder.rerank_fusion", description=__doc__)
    p.add_argument("--scores", required=True, help="cross-encoder scores qid\\tpid\\tscore")
    p.add_argument("--ranking", required=True, help="the first-stage ranking that was reranked")
    p.add_argument("--output_full", required=True, help="reranked top-k + first-stage tail")
    p.add_argument("--method", choices=METHODS, default="none")
    p.add_argument("--weight", type=float, default=1.0, help="weight of the cross-encoder")
    p.add_argument("--k", type=int, default=60, help="RRF constant")
    p.add_argument("--output_fused", help="the fused run (needed unless --method none)")
    args = p.parse_args(argv)
    setup_logging()
    scores = read_scores(args.scores)
    first = read_ranking(args.ranking)
    write_ranking(args.output_full, full_run(scores, first))
    if args.method != "none":
        if not args.output_fused:
            raise InputError(None, "--output_fused is required with --method rrf/interpolate")
        first_scores: dict[str, dict[str, float]] = {}
        for r in iter_ranking(args.ranking):
            first_scores.setdefault(r.qid, {})[r.pid] = r.score
        fused = fused_run(scores, first, first_scores, args.method, args.weight, args.k)
        write_ranking(args.output_fused, fused)
    logger.info("wrote %s (method %s)", args.output_full, args.method)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
