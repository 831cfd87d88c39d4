"""Teacher scores for distilling the cross-encoder into a bi-encoder (RetroMAE's
``--teacher_score_files``), and a check that they cover what the bi-encoder will sample.

RetroMAE's bi-encoder reads ``qid pid score`` lines from every file in
``--teacher_score_files a,b`` and, for each training query, looks up the score of a random
positive of ``train_qrels`` and of ``group_size - 1`` negatives drawn from the first
``sample_neg_from_topk`` entries of its ``neg_file`` (random corpus passages when a query
has fewer). A pair without a score raises ``KeyError`` there, hours into a run. This
module checks it beforehand:

    python -m cross_encoder.distillation.teacher check \\
        --teacher_score_files train_qrels_score.txt,train_rerank_score.txt \\
        --train_qrels train_qrels.txt --neg_file train.negs.tsv \\
        --sample_neg_from_topk 30 --group_size 8

The check streams the files: the pairs that can be drawn (positives and the neg_file's
top-k) are held as one int64 key each (query and passage numbered as they are met), the
score files are read line by line and mark the keys they cover. Memory: tens of bytes per
pair that can be drawn (keys, their order, a sorted copy), nothing per scored pair (20M
scored pairs: 4.48 GB as Python dicts, 1.77 GB streamed, docs/robustness.md).

Exit 0 when every pair has a score (the log line and ``--report`` name the depth and group
size verified, and the RetroMAE flags they stand for); exit 2 with one line naming the file,
the first missing pair and the number missing otherwise.
"""

from __future__ import annotations

import argparse
import logging
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cross_encoder.io import (
    InputError,
    cli,
    iter_neg_file,
    iter_scores,
    positives,
    read_qrels,
    read_scores,
    setup_logging,
    write_json,
)

logger = logging.getLogger(__name__)

TeacherScores = dict[str, dict[str, float]]


def read_teacher_scores(paths: str | Sequence[str]) -> TeacherScores:
    """``qid -> {pid: score}`` from one or more ``qid pid score`` files (a comma-separated
    string, as RetroMAE's ``--teacher_score_files``, or a list). Later files win."""
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p]
    if not paths:
        raise InputError(None, "no teacher score files given")
    out: TeacherScores = {}
    for path in paths:
        for qid, scores in read_scores(path).items():
            out.setdefault(qid, {}).update(scores)
    return out


EXAMPLES = 10  # missing pairs kept by name (first in query order) when checking files


@dataclass
class Coverage:
    """Which pairs the bi-encoder may look up, and which of them have no teacher score.
    ``missing_*`` list them in query order (:func:`coverage`: all of them;
    :func:`check_files`: the first :data:`EXAMPLES`); ``n_missing_*`` count them all."""

    n_queries: int = 0
    n_pairs: int = 0
    missing_positives: list[tuple[str, str]] = field(default_factory=list)
    missing_negatives: list[tuple[str, str]] = field(default_factory=list)
    short_queries: list[tuple[str, int]] = field(default_factory=list)
    n_missing_positives: int | None = None
    n_missing_negatives: int | None = None

    def __post_init__(self):
        if self.n_missing_positives is None:
            self.n_missing_positives = len(self.missing_positives)
        if self.n_missing_negatives is None:
            self.n_missing_negatives = len(self.missing_negatives)

    @property
    def ok(self) -> bool:
        return not (self.n_missing_positives or self.n_missing_negatives or self.short_queries)

    def summary(self) -> dict:
        return {
            "queries": self.n_queries,
            "pairs_checked": self.n_pairs,
            "missing_positive_scores": self.n_missing_positives,
            "missing_negative_scores": self.n_missing_negatives,
            "queries_with_too_few_negatives": len(self.short_queries),
            "first_missing_positive": list(self.missing_positives[:1]),
            "first_missing_negative": list(self.missing_negatives[:1]),
            "first_short_query": list(self.short_queries[:1]),
        }


def coverage(
    scores: Mapping[str, Mapping[str, float]],
    pos: Mapping[str, Iterable[str]],
    negs: Mapping[str, Sequence[str]],
    sample_neg_from_topk: int,
    group_size: int | None = None,
) -> Coverage:
    """Check every pair RetroMAE's bi-encoder can draw: each positive of each training
    query, and the first ``sample_neg_from_topk`` neg_file entries of that query. With
    ``group_size``, also list queries with fewer than ``group_size - 1`` such
    negatives (RetroMAE fills them with random passages, which have no score)."""
    cov = Coverage()
    for qid, ps in pos.items():
        cov.n_queries += 1
        have = scores.get(qid, {})
        for p in ps:
            cov.n_pairs += 1
            if p not in have:
                cov.missing_positives.append((qid, p))
        offered = negs.get(qid, [])[:sample_neg_from_topk]
        for p in offered:
            cov.n_pairs += 1
            if p not in have:
                cov.missing_negatives.append((qid, p))
        if group_size is not None and len(offered) < group_size - 1:
            cov.short_queries.append((qid, len(offered)))
    cov.n_missing_positives = len(cov.missing_positives)
    cov.n_missing_negatives = len(cov.missing_negatives)
    return cov


def coverage_of_files(
    score_files: str | Sequence[str],
    train_qrels: str,
    neg_file: str,
    sample_neg_from_topk: int,
    group_size: int | None = None,
) -> Coverage:
    """:func:`coverage` of the files, streamed (see the module docstring): the same counts,
    the first :data:`EXAMPLES` missing pairs of each kind, in the same order."""
    if isinstance(score_files, str):
        score_files = [p for p in score_files.split(",") if p]
    if not score_files:
        raise InputError(None, "no teacher score files given")
    pos = positives(read_qrels(train_qrels))
    qids = list(pos)
    qidx = {q: i for i, q in enumerate(qids)}
    pidx: dict[str, int] = {}

    def key(i: int, pid: str) -> int:
        j = pidx.setdefault(pid, len(pidx))
        return i << 32 | j

    pos_keys = array("q", (key(qidx[q], p) for q, ps in pos.items() for p in ps))
    # the first sample_neg_from_topk neg_file entries of each query (repeated qids
    # concatenate), with their place in coverage()'s order: query, then position
    offered = [0] * len(qids)
    neg_keys, neg_order = array("q"), array("q")
    for qid, pids in iter_neg_file(neg_file):
        i = qidx.get(qid)
        if i is None or offered[i] >= sample_neg_from_topk:
            continue
        take = pids[: sample_neg_from_topk - offered[i]]
        base = i * sample_neg_from_topk + offered[i]
        hi = i << 32
        neg_keys.extend([hi | pidx.setdefault(p, len(pidx)) for p in take])
        neg_order.extend(range(base, base + len(take)))
        offered[i] += len(take)
    # sorted, duplicates kept (searchsorted finds a key's first copy; a sort is ~7x
    # faster than np.unique here)
    needed = np.sort(np.concatenate([np.asarray(pos_keys), np.asarray(neg_keys)]))
    have = np.zeros(len(needed), dtype=bool)

    def mark(keys: array) -> None:
        k = np.asarray(keys)
        at = np.minimum(np.searchsorted(needed, k), max(len(needed) - 1, 0))
        if len(needed):
            have[at[needed[at] == k]] = True

    for path in score_files:
        buf = array("q")
        for qid, pid, _ in iter_scores(path):  # validates every line, as read_scores does
            i = qidx.get(qid)
            j = pidx.get(pid) if i is not None else None
            if j is not None:
                buf.append(i << 32 | j)
                if len(buf) >= 1 << 20:
                    mark(buf)
                    buf = array("q")
        mark(buf)
    pid_of = list(pidx)

    def missing(keys: array, order=None) -> tuple[int, list[tuple[str, str]]]:
        k = np.asarray(keys)
        gone = np.flatnonzero(~have[np.searchsorted(needed, k)])
        if order is not None:  # the first missing pairs in coverage()'s order
            gone = gone[np.argsort(np.asarray(order)[gone], kind="stable")]
        first = [(qids[int(x) >> 32], pid_of[int(x) & 0xFFFFFFFF]) for x in k[gone[:EXAMPLES]]]
        return len(gone), first

    n_pos, first_pos = missing(pos_keys)
    n_neg, first_neg = missing(neg_keys, neg_order)
    short = []
    if group_size is not None:
        short = [(q, offered[i]) for i, q in enumerate(qids) if offered[i] < group_size - 1]
    return Coverage(
        n_queries=len(qids),
        n_pairs=len(pos_keys) + len(neg_keys),
        missing_positives=first_pos,
        missing_negatives=first_neg,
        short_queries=short,
        n_missing_positives=n_pos,
        n_missing_negatives=n_neg,
    )


def check_files(
    score_files: str | Sequence[str],
    train_qrels: str,
    neg_file: str,
    sample_neg_from_topk: int,
    group_size: int | None = None,
) -> Coverage:
    """:func:`coverage_of_files`; raises :class:`InputError` naming the file at fault."""
    names = score_files if isinstance(score_files, str) else ",".join(score_files)
    cov = coverage_of_files(score_files, train_qrels, neg_file, sample_neg_from_topk, group_size)
    if cov.n_missing_positives:
        q, p = cov.missing_positives[0]
        raise InputError(
            train_qrels,
            f"positive (qid {q!r}, pid {p!r}) has no teacher score in {names} "
            f"(first of {cov.n_missing_positives} positives without one); "
            "score the train qrels with the cross-encoder",
        )
    if cov.n_missing_negatives:
        q, p = cov.missing_negatives[0]
        raise InputError(
            neg_file,
            f"negative (qid {q!r}, pid {p!r}) within sample_neg_from_topk="
            f"{sample_neg_from_topk} has no teacher score in {names} "
            f"(first of {cov.n_missing_negatives} pairs without one); the neg_file must come "
            "from the train ranking that was scored, at the same depth",
        )
    if cov.short_queries:
        q, n = cov.short_queries[0]
        raise InputError(
            neg_file,
            f"query {q!r} offers {n} negatives within sample_neg_from_topk="
            f"{sample_neg_from_topk}, fewer than group_size-1={group_size - 1} "
            f"({len(cov.short_queries)} queries); the bi-encoder would add random passages "
            "that have no teacher score",
        )
    return cov


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.distillation.teacher", description=__doc__
    )
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check that the teacher scores cover every sampled pair")
    c.add_argument(
        "--teacher_score_files", required=True, help="comma-separated qid pid score files"
    )
    c.add_argument("--train_qrels", required=True, help="train_qrels.txt (qid pid)")
    c.add_argument("--neg_file", required=True, help="qid<TAB>pid,pid,...")
    c.add_argument("--sample_neg_from_topk", type=int, default=200)
    c.add_argument(
        "--group_size",
        "--train_group_size",  # RetroMAE bi-encoder's spelling
        dest="group_size",
        type=int,
        default=None,
        help="also require group_size-1 negatives per query",
    )
    c.add_argument("--report", help="write a JSON summary here when the check passes")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.sample_neg_from_topk < 1:
        raise InputError(None, "--sample_neg_from_topk must be >= 1")
    if args.group_size is not None and args.group_size < 2:
        raise InputError(None, "--group_size must be >= 2")
    cov = check_files(
        args.teacher_score_files,
        args.train_qrels,
        args.neg_file,
        args.sample_neg_from_topk,
        args.group_size,
    )
    logger.info(
        "teacher scores cover all %d pairs of %d training queries, verified for %s; "
        "RetroMAE's bi-encoder: %s",
        cov.n_pairs,
        cov.n_queries,
        verified_for(args.sample_neg_from_topk, args.group_size),
        retromae_flags(
            args.teacher_score_files, args.neg_file, args.sample_neg_from_topk, args.group_size
        ),
    )
    if args.report:
        write_json(
            args.report,
            {
                "teacher_score_files": args.teacher_score_files.split(","),
                "neg_file": args.neg_file,
                "sample_neg_from_topk": args.sample_neg_from_topk,
                "group_size": args.group_size,
                "verified_for": verified_for(args.sample_neg_from_topk, args.group_size),
                "retromae_flags": retromae_flags(
                    args.teacher_score_files,
                    args.neg_file,
                    args.sample_neg_from_topk,
                    args.group_size,
                ),
                **cov.summary(),
            },
        )
    return 0


def verified_for(sample_neg_from_topk: int, group_size: int | None) -> str:
    """What a passed check guarantees, in words: the depth and the group size it covered."""
    depth = f"negatives drawn from the top {sample_neg_from_topk} of the neg_file"
    if group_size is None:
        return f"{depth}, any group size those negatives fill (group size not checked)"
    return f"{depth}, groups of {group_size} (1 positive + {group_size - 1} negatives)"


def retromae_flags(
    score_files: str, neg_file: str, sample_neg_from_topk: int, group_size: int | None
) -> str:
    """The flags of RetroMAE's bi-encoder that this check covers: a larger
    ``--train_group_size`` or ``--sample_neg_from_topk`` can draw pairs without a score."""
    flags = f"--teacher_score_files {score_files} --neg_file {neg_file} "
    flags += f"--sample_neg_from_topk {sample_neg_from_topk}"
    if group_size is not None:
        flags += f" --train_group_size {group_size}"
    return flags


if __name__ == "__main__":
    raise SystemExit(main())
