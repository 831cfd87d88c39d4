"""Writers for every text format the pipeline produces (see :mod:`cross_encoder.io`); each
writes atomically (:func:`cross_encoder.io.atomic.atomic_write`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cross_encoder.io.atomic import atomic_write
from cross_encoder.io.errors import PathLike


def format_score(score: float) -> str:
    """Plain float text with full float32 precision (never ``[x]``)."""
    return repr(float(score))


def write_corpus(path: PathLike, passages: Iterable[tuple[str, str, str]]) -> int:
    """``pid\\ttitle\\ttext`` lines (the caller keeps tabs and newlines out of the text);
    returns the number written."""
    n = 0
    with atomic_write(path) as f:
        for pid, title, text in passages:
            f.write(f"{pid}\t{title}\t{text}\n")
            n += 1
    return n


def write_queries(path: PathLike, queries: Iterable[tuple[str, str]]) -> None:
    """``qid\\ttext`` lines."""
    with atomic_write(path) as f:
        for qid, text in queries:
            f.write(f"{qid}\t{text}\n")


def write_qrels(path: PathLike, qrels: Mapping[str, Mapping[str, int]]) -> None:
    """TREC qrels ``qid\\t0\\tpid\\trel``, graded relevance kept."""
    with atomic_write(path) as f:
        for qid, rels in qrels.items():
            for pid, rel in rels.items():
                f.write(f"{qid}\t0\t{pid}\t{rel}\n")


def write_qrels_pairs(path: PathLike, pos: Mapping[str, Sequence[str]]) -> None:
    """``qid\\tpid`` one line per positive (RetroMAE's ``train_qrels.txt``)."""
    with atomic_write(path) as f:
        for qid, pids in pos.items():
            for pid in pids:
                f.write(f"{qid}\t{pid}\n")


def write_scores(path: PathLike, rows: Iterable[tuple[str, str, float]]) -> int:
    """Write ``qid\\tpid\\tscore`` lines; returns the number written."""
    n = 0
    with atomic_write(path) as f:
        for qid, pid, score in rows:
            f.write(f"{qid}\t{pid}\t{format_score(score)}\n")
            n += 1
    return n


def write_ranking(
    path: PathLike, ranking: Mapping[str, Sequence[tuple[str, float]]], depth: int | None = None
) -> None:
    """Write ``qid\\tpid\\trank\\tscore``; each qid's list must already be in rank order."""
    with atomic_write(path) as f:
        for qid, pairs in ranking.items():
            for rank, (pid, score) in enumerate(pairs[:depth] if depth else pairs, start=1):
                f.write(f"{qid}\t{pid}\t{rank}\t{format_score(score)}\n")


def write_neg_file(
    path: PathLike,
    negatives: Mapping[str, Sequence[str]] | Iterable[tuple[str, Sequence[str]]],
) -> None:
    """``qid\\tpid,pid,...`` from a mapping or ``(qid, pids)`` pairs as they come;
    queries without negatives are left out."""
    items = negatives.items() if isinstance(negatives, Mapping) else negatives
    with atomic_write(path) as f:
        for qid, pids in items:
            if pids:
                f.write(f"{qid}\t{','.join(pids)}\n")


def write_json(path: PathLike, obj: Any) -> None:
    """A JSON file (indented, newline-terminated), written atomically."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def write_text(path: PathLike, text: str) -> None:
    """A text file (a table, a card) in one piece."""
    with atomic_write(path) as f:
        f.write(text)
