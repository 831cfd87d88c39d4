"""Hard negatives from any first-stage ranking: RetroMAE's ``neg_file``.

    python -m cross_encoder.first_stage.negatives --ranking_file train_ranking.tsv \\
        --qrels_file qrels.train.tsv --output_file train_negs.tsv --depth 200

For each judged query, the ranked passages that are not positives, in rank order, as
``qid\\tpid,pid,...``. Queries the ranking does not cover get no line (training then fills
their groups with random passages).

The ranking is read into compact arrays (query, passage and rank as int32, passages numbered
as they are met: ~40 bytes a ranked pair at the peak, not ~175 as dicts of Python lists; 0.79
vs 3.50 GB at 20M pairs), so that the train ranking of the seed's ~500k queries x top-200 fits
a node.
"""

from __future__ import annotations

import argparse
import logging
from array import array
from collections.abc import Iterator

import numpy as np

from cross_encoder.io import (
    check_overlap,
    cli,
    iter_ranking,
    read_positives,
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


class CompactRanking:
    """A ranking file as int32 arrays, each query's pids in :func:`read_ranking`'s order
    (by rank, then file order; ``qid pid`` lines rank by position in the file)."""

    def __init__(self, path):
        self.qidx: dict[str, int] = {}
        pidx: dict[str, int] = {}
        q, p, rank = array("i"), array("i"), array("i")
        for i, r in enumerate(iter_ranking(path)):
            q.append(self.qidx.setdefault(r.qid, len(self.qidx)))
            p.append(pidx.setdefault(r.pid, len(pidx)))
            rank.append(r.rank if r.rank is not None else i)
        self.pids = list(pidx)
        del pidx
        qa = np.asarray(q)
        order = np.lexsort((np.asarray(rank), qa))  # stable: ties keep file order
        del rank
        self.p = np.asarray(p)[order]
        self.starts = np.searchsorted(qa[order], np.arange(len(self.qidx) + 1))

    def __contains__(self, qid: str) -> bool:
        return qid in self.qidx

    def get(self, qid: str, depth: int | None = None) -> list[str]:
        i = self.qidx[qid]
        lo, hi = self.starts[i], self.starts[i + 1]
        if depth is not None:
            hi = min(hi, lo + depth)
        return [self.pids[j] for j in self.p[lo:hi].tolist()]


def iter_hard_negatives(
    ranking: CompactRanking, pos: dict[str, list[str]], depth: int | None = None
) -> Iterator[tuple[str, list[str]]]:
    """:func:`hard_negatives` of a :class:`CompactRanking`, one query at a time."""
    for q, ps in pos.items():
        if q in ranking:
            exclude = set(ps)
            yield q, [p for p in ranking.get(q, depth) if p not in exclude]


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
    ranking = CompactRanking(args.ranking_file)
    pos = read_positives(args.qrels_file)
    check_overlap(
        args.ranking_file,
        pos,
        ranking,
        none=f"ranks none of the {{n}} queries of {args.qrels_file}",
        some=f"ranks {{found}} of {{n}} judged queries of {args.qrels_file}; the others get no "
        "hard negatives",
    )
    n = 0

    def counted():
        nonlocal n
        for q, negs in iter_hard_negatives(ranking, pos, args.depth):
            n += 1
            yield q, negs

    write_neg_file(args.output_file, counted())
    logger.info("hard negatives for %d queries -> %s", n, args.output_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
