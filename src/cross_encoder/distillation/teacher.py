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

Exit 0 when every pair has a score (the log line and ``--report`` name the depth and group
size verified, and the RetroMAE flags they stand for); exit 2 with one line naming the file,
the first missing pair and the number missing otherwise.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cross_encoder.io import (
    InputError,
    cli,
    positives,
    read_neg_file,
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


@dataclass
class Coverage:
    """Which pairs the bi-encoder may look up, and which of them have no teacher score."""

    n_queries: int = 0
    n_pairs: int = 0
    missing_positives: list[tuple[str, str]] = field(default_factory=list)
    missing_negatives: list[tuple[str, str]] = field(default_factory=list)
    short_queries: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_positives or self.missing_negatives or self.short_queries)

    def summary(self) -> dict:
        return {
            "queries": self.n_queries,
            "pairs_checked": self.n_pairs,
            "missing_positive_scores": len(self.missing_positives),
            "missing_negative_scores": len(self.missing_negatives),
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
    return cov


def check_files(
    score_files: str | Sequence[str],
    train_qrels: str,
    neg_file: str,
    sample_neg_from_topk: int,
    group_size: int | None = None,
) -> Coverage:
    """:func:`coverage` of files; raises :class:`InputError` naming the file at fault."""
    scores = read_teacher_scores(score_files)
    names = score_files if isinstance(score_files, str) else ",".join(score_files)
    pos = positives(read_qrels(train_qrels))
    negs = read_neg_file(neg_file)
    cov = coverage(scores, pos, negs, sample_neg_from_topk, group_size)
    if cov.missing_positives:
        q, p = cov.missing_positives[0]
        raise InputError(
            train_qrels,
            f"positive (qid {q!r}, pid {p!r}) has no teacher score in {names} "
            f"(first of {len(cov.missing_positives)} positives without one); "
            "score the train qrels with the cross-encoder",
        )
    if cov.missing_negatives:
        q, p = cov.missing_negatives[0]
        raise InputError(
            neg_file,
            f"negative (qid {q!r}, pid {p!r}) within sample_neg_from_topk="
            f"{sample_neg_from_topk} has no teacher score in {names} "
            f"(first of {len(cov.missing_negatives)} pairs without one); the neg_file must come "
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
