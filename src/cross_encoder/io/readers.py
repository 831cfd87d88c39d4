"""Readers for every text format the pipeline takes (see :mod:`cross_encoder.io`).

Every reader raises :class:`InputError` with ``path:line: what is wrong`` on bad input.
CRLF line ends and a UTF-8 byte-order mark are accepted everywhere.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cross_encoder.io.errors import InputError, PathLike

logger = logging.getLogger(__name__)


def _check_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory, expected a file")
    return p


def iter_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` without the line end, skipping blank lines.

    Lines are decoded one by one, so non-UTF-8 bytes raise :class:`InputError` naming
    the right line. A UTF-8 byte-order mark and CRLF line ends are accepted.
    """
    with open(_check_file(path), "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    path, f"not valid UTF-8 ({e.reason}); re-encode the file as UTF-8", lineno
                ) from None
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield lineno, line


def _nonempty(path: PathLike, count: int, what: str) -> None:
    if count == 0:
        raise InputError(path, f"is empty: expected {what}")


# --------------------------------------------------------------------------- corpus / queries


def _is_jsonl(path: PathLike) -> bool:
    return str(path).endswith((".jsonl", ".json"))


def _json_line(path: PathLike, lineno: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(path, f"invalid JSON ({e.msg})", lineno) from None
    if not isinstance(obj, dict):
        raise InputError(path, "expected a JSON object per line", lineno)
    return obj


def iter_corpus(path: PathLike, allow_empty_text: bool = False) -> Iterator[tuple[str, str, str]]:
    """Stream ``(pid, title, text)`` from a corpus TSV (2 or 3 columns) or BEIR jsonl.

    Duplicate pids and empty passages are errors.
    """
    seen: set[str] = set()
    n = 0
    jsonl = _is_jsonl(path)
    for lineno, line in iter_lines(path):
        if jsonl:
            obj = _json_line(path, lineno, line)
            if "_id" not in obj:
                raise InputError(path, 'missing "_id"', lineno)
            pid = str(obj["_id"])
            title = str(obj.get("title") or "")
            text = str(obj.get("text") or "")
        else:
            cols = line.split("\t")
            if len(cols) == 3:
                pid, title, text = cols
            elif len(cols) == 2:
                pid, text = cols
                title = ""
            else:
                raise InputError(
                    path,
                    f"expected 2 or 3 tab-separated columns (pid, [title,] text), got {len(cols)}",
                    lineno,
                )
            pid = pid.strip()
        if not pid:
            raise InputError(path, "empty passage id", lineno)
        if pid in seen:
            raise InputError(path, f"duplicate passage id {pid!r}", lineno)
        if not allow_empty_text and not (text.strip() or title.strip()):
            raise InputError(path, f"passage {pid!r} has no text", lineno)
        seen.add(pid)
        n += 1
        yield pid, title.strip(), text.strip()
    _nonempty(path, n, "one passage per line")


def read_queries(path: PathLike) -> dict[str, str]:
    """Read ``qid -> text`` from a query TSV (``qid\\ttext``) or BEIR ``queries.jsonl``."""
    out: dict[str, str] = {}
    jsonl = _is_jsonl(path)
    for lineno, line in iter_lines(path):
        if jsonl:
            obj = _json_line(path, lineno, line)
            if "_id" not in obj:
                raise InputError(path, 'missing "_id"', lineno)
            qid, text = str(obj["_id"]), str(obj.get("text") or "")
        else:
            cols = line.split("\t")
            if len(cols) != 2:
                raise InputError(
                    path, f"expected 2 tab-separated columns (qid, text), got {len(cols)}", lineno
                )
            qid, text = cols[0].strip(), cols[1]
        if not qid:
            raise InputError(path, "empty query id", lineno)
        if qid in out:
            raise InputError(path, f"duplicate query id {qid!r}", lineno)
        if not text.strip():
            raise InputError(path, f"query {qid!r} has no text", lineno)
        out[qid] = text.strip()
    _nonempty(path, len(out), "one query per line")
    return out


# --------------------------------------------------------------------------- qrels


def _split(line: str) -> list[str]:
    return line.split("\t") if "\t" in line else line.split()


def _int(path: PathLike, lineno: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        try:
            f = float(value)
        except ValueError:
            raise InputError(path, f"{what} {value!r} is not an integer", lineno) from None
        if not f.is_integer():
            raise InputError(path, f"{what} {value!r} is not an integer", lineno) from None
        return int(f)


def read_qrels(path: PathLike) -> dict[str, dict[str, int]]:
    """Read relevance judgements as ``qid -> {pid: relevance}``.

    Accepts ``qid pid`` (relevance 1), ``qid pid1,pid2``, ``qid 0 pid rel`` (tab or space)
    and BEIR's ``query-id corpus-id score`` with a header line. Judgements with relevance
    <= 0 are kept (ir_measures ignores them for relevance) so that counts stay honest.
    """
    qrels: dict[str, dict[str, int]] = {}
    n = 0
    for lineno, line in iter_lines(path):
        cols = _split(line)
        if n == 0 and cols and cols[0].lower() in ("query-id", "qid", "query_id"):
            continue  # header
        if len(cols) == 2:
            qid, pids = cols
            for pid in pids.split(","):
                if pid.strip():
                    qrels.setdefault(qid.strip(), {})[pid.strip()] = 1
        elif len(cols) == 3:
            qid, pid, rel = cols
            qrels.setdefault(qid, {})[pid] = _int(path, lineno, rel, "relevance")
        elif len(cols) == 4:
            qid, _, pid, rel = cols
            qrels.setdefault(qid, {})[pid] = _int(path, lineno, rel, "relevance")
        else:
            raise InputError(
                path,
                f"expected qrels as 'qid pid', 'qid 0 pid rel' or 'query-id corpus-id score', "
                f"got {len(cols)} columns",
                lineno,
            )
        n += 1
    _nonempty(path, n, "one judgement per line")
    return qrels


def positives(qrels: Mapping[str, Mapping[str, int]]) -> dict[str, list[str]]:
    """``qid -> [pid, ...]`` of judgements with relevance > 0, in file order."""
    out = {q: [p for p, r in d.items() if r > 0] for q, d in qrels.items()}
    return {q: ps for q, ps in out.items() if ps}


def read_positives(path: PathLike) -> dict[str, list[str]]:
    """:func:`positives` of :func:`read_qrels`; an error when there are none (a file of
    relevance-0 judgements cannot give training positives or hard negatives)."""
    pos = positives(read_qrels(path))
    if not pos:
        raise InputError(
            path, "has no positive judgement (relevance > 0); use the qrels of the training queries"
        )
    return pos


# --------------------------------------------------------------------------- rankings


@dataclass(frozen=True)
class RankedPair:
    """One line of a ranking: query, passage, and rank and score when given."""

    qid: str
    pid: str
    rank: int | None = None
    score: float | None = None


def _float(path: PathLike, lineno: int, value: str, what: str = "score") -> float:
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):  # RetroMAE writes numpy arrays: [3.14]
        v = v[1:-1].strip()
    try:
        f = float(v)
    except ValueError:
        raise InputError(path, f"{what} {value!r} is not a number", lineno) from None
    if math.isnan(f):
        raise InputError(path, f"{what} is NaN", lineno)
    return f


def iter_ranking(path: PathLike, depth: int | None = None) -> Iterator[RankedPair]:
    """Stream a ranking / test_file in file order.

    ``qid pid rank score`` (rows with rank > depth dropped), ``qid pid`` (every row kept, as
    the seed does for ``train_qrels.txt``; ``qid pid1,pid2`` expands), ``qid pid score``
    (a score file; rank = position within the qid) or a TREC run ``qid Q0 pid rank score tag``.
    """
    n = 0
    position: dict[str, int] = {}
    for lineno, line in iter_lines(path):
        cols = _split(line)
        if len(cols) == 6:  # TREC run
            qid, _, pid, rank_s, score_s, _ = cols
            rank = _int(path, lineno, rank_s, "rank")
            score = _float(path, lineno, score_s)
        elif len(cols) == 4:
            qid, pid, rank_s, score_s = cols
            rank = _int(path, lineno, rank_s, "rank")
            score = _float(path, lineno, score_s)
        elif len(cols) == 3:
            qid, pid, score_s = cols
            score = _float(path, lineno, score_s)
            rank = position.get(qid, 0) + 1
            position[qid] = rank
        elif len(cols) == 2:
            qid, pids = cols
            n += 1
            for pid in pids.split(","):
                if pid.strip():
                    yield RankedPair(qid.strip(), pid.strip())
            continue
        else:
            raise InputError(
                path,
                "expected a ranking as 'qid pid rank score', 'qid pid', 'qid pid score' or a "
                f"TREC run 'qid Q0 pid rank score tag', got {len(cols)} columns",
                lineno,
            )
        n += 1
        if rank < 1:
            raise InputError(path, f"rank {rank} must be >= 1", lineno)
        if depth is not None and rank > depth:
            continue
        yield RankedPair(qid, pid, rank, score)
    _nonempty(path, n, "one ranked pair per line")


def read_ranking(path: PathLike, depth: int | None = None) -> dict[str, list[str]]:
    """``qid -> [pid, ...]`` ordered by rank (then file order); at most ``depth`` per qid."""
    rows: dict[str, list[tuple[int, int, str]]] = {}
    for i, r in enumerate(iter_ranking(path, depth)):
        rows.setdefault(r.qid, []).append((r.rank if r.rank is not None else i, i, r.pid))
    out = {q: [p for _, _, p in sorted(v)] for q, v in rows.items()}
    if depth is not None:
        out = {q: v[:depth] for q, v in out.items()}
    return out


def iter_scores(path: PathLike) -> Iterator[tuple[str, str, float]]:
    """Stream ``(qid, pid, score)`` from a ``qid pid score`` file (``[x]`` accepted; a ranking
    ``qid pid rank score`` or a TREC run too) in file order, one line at a time."""
    n = 0
    for lineno, line in iter_lines(path):
        cols = _split(line)
        if len(cols) == 3:
            qid, pid, s = cols
        elif len(cols) == 4:  # a ranking file: qid pid rank score
            qid, pid, _, s = cols
        elif len(cols) == 6:  # a TREC run
            qid, _, pid, _, s, _ = cols
        else:
            raise InputError(
                path, f"expected 'qid pid score' (3 columns), got {len(cols)} columns", lineno
            )
        yield qid, pid, _float(path, lineno, s)
        n += 1
    _nonempty(path, n, "one 'qid pid score' line per pair")


def read_scores(path: PathLike) -> dict[str, dict[str, float]]:
    """``qid -> {pid: score}`` from a ``qid pid score`` file (``[x]`` accepted)."""
    out: dict[str, dict[str, float]] = {}
    for qid, pid, score in iter_scores(path):
        out.setdefault(qid, {})[pid] = score
    return out


def iter_neg_file(path: PathLike) -> Iterator[tuple[str, list[str]]]:
    """Stream ``(qid, [pid, ...])`` per line of ``qid\\tpid,pid,...``, in file order."""
    n = 0
    for lineno, line in iter_lines(path):
        cols = line.split("\t")
        if len(cols) != 2:
            raise InputError(
                path, f"expected 'qid<TAB>pid,pid,...' (2 columns), got {len(cols)}", lineno
            )
        n += 1
        yield cols[0].strip(), [p.strip() for p in cols[1].split(",") if p.strip()]
    _nonempty(path, n, "one 'qid<TAB>pid,pid,...' line per query")


def read_neg_file(path: PathLike) -> dict[str, list[str]]:
    """``qid -> [pid, ...]`` from ``qid\\tpid,pid,...`` (repeated qids concatenate)."""
    out: dict[str, list[str]] = {}
    for qid, pids in iter_neg_file(path):
        out.setdefault(qid, []).extend(pids)
    return out


def read_json(path: PathLike) -> Any:
    """A JSON file; a missing or broken one is an :class:`InputError` naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise InputError(path, f"not valid JSON ({e})") from None


# --------------------------------------------------------------------------- do files agree?


def check_overlap(
    path: PathLike,
    ids: Iterable[str],
    known: Container[str],
    none: str,
    some: str | None = None,
) -> set[str]:
    """The ids of ``ids`` that are not in ``known`` (the one "do these files belong
    together?" check). None of them known: :class:`InputError` on ``path`` with ``none``;
    some unknown: a warning with ``some`` (if given). Both are ``str.format`` templates with
    ``{n}`` (distinct ids), ``{missing}`` (how many are unknown), ``{found}`` (how many are
    known) and ``{example}`` (one unknown id, quoted)."""
    ids = list(dict.fromkeys(ids))
    missing = [i for i in ids if i not in known]
    fields = {
        "n": len(ids),
        "missing": len(missing),
        "found": len(ids) - len(missing),
        "example": repr(missing[0]) if missing else "",
    }
    if ids and len(missing) == len(ids):
        raise InputError(path, none.format(**fields))
    if missing and some:
        logger.warning("%s: %s", path, some.format(**fields))
    return set(missing)
