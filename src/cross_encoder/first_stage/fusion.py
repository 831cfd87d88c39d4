"""Reciprocal-rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) of several rankings.

    python -m cross_encoder.first_stage.fusion --ranking dev.bm25.tsv --ranking dev.dense.tsv \\
        --output_ranking dev.hybrid.tsv --k 60 --depth 1000

score(q, p) = Σ_runs 1 / (k + rank_run(q, p)); a passage missing from a run adds nothing.
Ties keep the order of first appearance (first run first), so the output is deterministic.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence

from cross_encoder.io import InputError, cli, read_ranking, setup_logging, write_ranking

logger = logging.getLogger(__name__)


def rrf(
    rankings: Sequence[Mapping[str, Sequence[str]]],
    k: int = 60,
    depth: int | None = None,
    weights: Sequence[float] | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Reciprocal-rank fusion of rankings: ``score(q, p) = Σ_runs w_run / (k + rank_run(q, p))``.

    Args:
        rankings: runs, each ``qid -> [pid, ...]`` best first.
        k: the RRF constant (60 in the paper); larger flattens the weight of the top ranks.
        depth: keep this many passages per query (None: all).
        weights: one weight per run (None: 1 each).

    Returns:
        ``qid -> [(pid, score), ...]`` best first, for every query of any run; ties keep the
        order of first appearance (first run first).

    References:
        Cormack, Clarke and Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and
        individual Rank Learning Methods", SIGIR 2009.
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    qids: dict[str, None] = {}
    for r in rankings:
        qids.update(dict.fromkeys(r))
    out: dict[str, list[tuple[str, float]]] = {}
    for q in qids:
        scores: dict[str, float] = {}
        for w, r in zip(weights, rankings, strict=True):
            for rank, p in enumerate(r.get(q, ()), start=1):
                scores[p] = scores.get(p, 0.0) + w / (k + rank)
        fused = sorted(scores.items(), key=lambda x: -x[1])
        out[q] = fused[:depth] if depth else fused
    return out


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.first_stage.fusion", description=__doc__
    )
    p.add_argument("--ranking", action="append", required=True, help="repeat for each run")
    p.add_argument("--output_ranking", required=True)
    p.add_argument("--k", type=int, default=60)
    p.add_argument("--depth", type=int, default=1000, help="keep this many per query")
    p.add_argument("--input_depth", type=int, default=None, help="use this many of each run")
    args = p.parse_args(argv)
    setup_logging()
    if len(args.ranking) < 2:
        raise InputError(None, "fusion needs at least two --ranking files")
    runs = [read_ranking(r, args.input_depth) for r in args.ranking]
    fused = rrf(runs, args.k, args.depth)
    write_ranking(args.output_ranking, fused)
    logger.info("fused %d runs for %d queries", len(runs), len(fused))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
