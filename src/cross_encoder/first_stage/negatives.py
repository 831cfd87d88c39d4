"""Hard negatives from any first-stage ranking: RetroMAE's ``neg_file``.

    python -m cross_encoder.first_stage.negatives --ranking_file train_ranking.tsv \\
        --qrels_file qrels.train.tsv --output_file train_negs.tsv --depth 200

For each judged query, the ranked passages that are not positives, in rank order, as
``qid\\tpid,pid,...``. Queries the ranking does not cover get no line (training then fills
their groups with random passages).
"""

from __future__ import annotations

import argparse
import logging

from cross_encoder.io import (
    check_overlap,
    cli,
    read_positives,
    read_ranking,
    setup_logging,
    write_neg_file,
)

logger = logging.getLogger(__name__)


def hard_negatives(
    ranking: dict[str, list[str]], pos: dict[str, list[str]], depth: int | None = None
) -> dict[str, list[str]]:
    """Hard negatives of each judged query: its ranked passages that are not positives.

    Args:
        ranking: ``qid -> [pid, ...]`` best first (any first stage).
        pos: ``qid -> [positive pid, ...]`` (the judged queries).
        depth: look at this many top passages per query (None: all).

    Returns:
        ``qid -> [pid, ...]`` in rank order, for the judged queries the ranking covers
        (RetroMAE's ``neg_file``; the others get no entry).
    """
    out = {}
    for q, ps in pos.items():
        if q in ranking:
            exclude = set(ps)
            out[q] = [p for p in ranking[q][:depth] if p not in exclude]
    return out


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.first_stage.negatives", description=__doc__
    )
    p.add_argument("--ranking_file", required=True)
    p.add_argument("--qrels_file", required=True)
    p.add_argument("--output_file", required=True)
    p.add_argument("--depth", type=int, default=None, help="look this deep into the ranking")
    args = p.parse_args(argv)
    setup_logging()
    ranking = read_ranking(args.ranking_file)
    pos = read_positives(args.qrels_file)
    check_overlap(
        args.ranking_file,
        pos,
        ranking,
        none=f"ranks none of the {{n}} queries of {args.qrels_file}",
        some=f"ranks {{found}} of {{n}} judged queries of {args.qrels_file}; the others get no "
        "hard negatives",
    )
    negs = hard_negatives(ranking, pos, args.depth)
    write_neg_file(args.output_file, negs)
    logger.info("hard negatives for %d queries -> %s", len(negs), args.output_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
