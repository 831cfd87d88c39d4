"""Pseudo-queries from the corpus itself: a passage's title as a query for its text.

Extra training data where judged queries are few (SciFact has 709): the title of a passage is
a short statement of what its text is about, as a claim or a question is. Two steps:

    python -m cross_encoder.data.pseudo_queries queries --corpus_file corpus.jsonl --n 700 \\
        --output_queries pseudo.query.txt
    # retrieve for them with the first stage (BM25), then
    python -m cross_encoder.data.pseudo_queries pairs --corpus_file corpus.jsonl \\
        --pseudo_queries pseudo.query.txt --pseudo_ranking pseudo.bm25.tsv --depth 100 \\
        --train_queries train.query.txt --train_qrels qrels.train.tsv --train_negs train.negs.tsv \\
        --output_dir pseudo/

``queries`` picks ``n`` passages (seeded) whose title has at least ``min_title_words`` words and
whose text is not empty, and writes ``pq-<pid>\\t<title>``.

``pairs`` writes the augmented training files, ready for preprocess and training:

* ``corpus.tsv``: the whole corpus, plus ``<pid>#body`` (its text without the title) for every
  passage a pseudo-query uses. A pseudo-query's group is made of such title-less passages only
  (its positive and its negatives), so the title is never in the passage it must find and no
  group mixes the two forms (which would let a model learn the form instead of relevance);
* ``train.query.txt``, ``qrels.train.tsv``: the train queries and qrels plus the pseudo ones
  (``pq-<pid>`` -> ``<pid>#body``);
* ``train.negs.tsv``: the train hard negatives plus, for each pseudo-query, the first-stage
  ranking of its title without its own passage, as ``#body`` ids.

Pseudo-query ids and ``#body`` ids must not already be in the files (an error says so).
"""

from __future__ import annotations

import argparse
import logging
import random
from pathlib import Path

from cross_encoder.io import (
    InputError,
    atomic_write,
    check_overlap,
    cli,
    iter_corpus,
    read_neg_file,
    read_qrels,
    read_queries,
    read_ranking,
    setup_logging,
    write_neg_file,
    write_qrels,
    write_queries,
)

logger = logging.getLogger(__name__)

PREFIX = "pq-"
BODY = "#body"
FILES = {
    "corpus": "corpus.tsv",
    "queries": "train.query.txt",
    "qrels": "qrels.train.tsv",
    "negs": "train.negs.tsv",
}


def _clean(text: str) -> str:
    return " ".join(text.split())  # no tabs or newlines inside a TSV field


def pick_titles(
    corpus_file: str, n: int, seed: int = 0, min_title_words: int = 4
) -> dict[str, str]:
    """``{pq-<pid>: title}`` for ``n`` seeded passages with a usable title, in corpus order."""
    usable = [
        (pid, title)
        for pid, title, text in iter_corpus(corpus_file)
        if text and len(title.split()) >= min_title_words
    ]
    if not usable:
        raise InputError(
            corpus_file, f"no passage has a title of {min_title_words}+ words and a text"
        )
    if n > len(usable):
        logger.warning("%s: only %d passages have a usable title", corpus_file, len(usable))
    chosen = set(random.Random(seed).sample(range(len(usable)), min(n, len(usable))))
    return {PREFIX + pid: _clean(title) for i, (pid, title) in enumerate(usable) if i in chosen}


def build_pairs(
    corpus_file: str,
    pseudo: dict[str, str],
    ranking: dict[str, list[str]],
    depth: int,
    train_queries: dict[str, str],
    train_qrels: dict[str, dict[str, int]],
    train_negs: dict[str, list[str]],
    output_dir: Path,
) -> dict[str, int]:
    """Write the training set augmented with title pseudo-queries into ``output_dir``; returns
    how many pseudo-queries and body passages it added."""
    clash = [q for q in pseudo if q in train_queries]
    if clash:
        raise InputError(None, f"train queries already use the pseudo-query id {clash[0]!r}")
    negs = {}
    for q in pseudo:
        own = q[len(PREFIX) :]
        negs[q] = [p + BODY for p in ranking.get(q, [])[:depth] if p != own]
    needed = {q[len(PREFIX) :] for q in pseudo} | {
        p[: -len(BODY)] for v in negs.values() for p in v
    }
    out = {k: output_dir / name for k, name in FILES.items()}
    n_body = 0
    with atomic_write(out["corpus"]) as f:
        bodies = []
        for pid, title, text in iter_corpus(corpus_file):
            if pid.endswith(BODY):
                raise InputError(corpus_file, f"passage id {pid!r} ends with {BODY!r}")
            f.write(f"{pid}\t{_clean(title)}\t{_clean(text)}\n")
            if pid in needed and text:
                bodies.append((pid, text))
        for pid, text in bodies:
            f.write(f"{pid}{BODY}\t\t{_clean(text)}\n")
            n_body += 1
    have_body = {p for p, _ in bodies}
    negs = {q: [p for p in v if p[: -len(BODY)] in have_body] for q, v in negs.items()}
    write_queries(out["queries"], [*train_queries.items(), *pseudo.items()])
    write_qrels(out["qrels"], {**train_qrels, **{q: {q[len(PREFIX) :] + BODY: 1} for q in pseudo}})
    write_neg_file(out["negs"], {**train_negs, **negs})
    return {"pseudo_queries": len(pseudo), "body_passages": n_body}


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.data.pseudo_queries", description=__doc__
    )
    sub = p.add_subparsers(dest="step", required=True)
    q = sub.add_parser("queries", help="pick titles as pseudo-queries")
    q.add_argument("--corpus_file", required=True)
    q.add_argument("--n", type=int, required=True, help="number of pseudo-queries")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--min_title_words", type=int, default=4)
    q.add_argument("--output_queries", required=True)
    r = sub.add_parser("pairs", help="write the augmented corpus, queries, qrels and negatives")
    r.add_argument("--corpus_file", required=True)
    r.add_argument("--pseudo_queries", required=True)
    r.add_argument("--pseudo_ranking", required=True, help="first-stage ranking of the titles")
    r.add_argument("--depth", type=int, default=100, help="negatives from this deep")
    r.add_argument("--train_queries", required=True)
    r.add_argument("--train_qrels", required=True)
    r.add_argument("--train_negs", required=True)
    r.add_argument("--output_dir", required=True)
    args = p.parse_args(argv)
    setup_logging()
    if args.step == "queries":
        if args.n < 1:
            raise InputError(None, "--n must be >= 1")
        titles = pick_titles(args.corpus_file, args.n, args.seed, args.min_title_words)
        write_queries(args.output_queries, titles.items())
        logger.info("%d pseudo-queries (titles) -> %s", len(titles), args.output_queries)
        return 0
    pseudo = read_queries(args.pseudo_queries)
    bad = [x for x in pseudo if not x.startswith(PREFIX)]
    if bad:
        raise InputError(args.pseudo_queries, f"query id {bad[0]!r} does not start with {PREFIX!r}")
    ranking = read_ranking(args.pseudo_ranking)
    check_overlap(
        args.pseudo_ranking,
        pseudo,
        ranking,
        none=f"ranks none of the queries of {args.pseudo_queries}",
    )
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = build_pairs(
        args.corpus_file,
        pseudo,
        ranking,
        args.depth,
        read_queries(args.train_queries),
        read_qrels(args.train_qrels),
        read_neg_file(args.train_negs),
        out,
    )
    logger.info("augmented training files in %s: %s", out, counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
