"""First stage with BM25 (``bm25s``): rankings for queries and hard negatives for training.

    python -m cross_encoder.first_stage.bm25 --corpus_file data/corpus.tsv \\
        --query_file data/train.query.txt --qrels_file data/qrels.train.tsv \\
        --output_ranking train_ranking.tsv --output_neg_file train_negs.tsv --depth 200

Indexes title + text (English stopwords, Snowball stemming; k1=1.5, b=0.75 by default),
writes ``qid\\tpid\\trank\\tscore`` and, given qrels, a neg_file (``qid\\tpid,pid,...``: the
ranked passages that are not positives, in rank order). With ``--index_dir`` the index is
saved once and reused by later calls (train and dev share it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cross_encoder.first_stage.negatives import hard_negatives
from cross_encoder.io import (
    InputError,
    atomic_dir,
    atomic_write,
    check_overlap,
    cli,
    format_score,
    iter_corpus,
    read_positives,
    read_queries,
    setup_logging,
    write_text,
)

logger = logging.getLogger(__name__)


def make_tokenizer(stopwords: str | None = "en", stem_language: str | None = "english"):
    """The bm25s tokenizer: lower-case words, stopwords removed, Snowball-stemmed."""
    from bm25s.tokenization import Tokenizer

    stemmer = None
    if stem_language:
        import Stemmer

        stemmer = Stemmer.Stemmer(stem_language).stemWord
    return Tokenizer(stopwords=stopwords or [], stemmer=stemmer)


def build_index(
    corpus_file: str | Path,
    k1: float = 1.5,
    b: float = 0.75,
    stopwords: str | None = "en",
    stem_language: str | None = "english",
    chunk_size: int = 50_000,
):
    """Return ``(retriever, tokenizer, pids)``; the corpus is read and tokenized in chunks,
    keeping token ids as compact arrays, so memory grows with tokens, not text."""
    import bm25s
    from bm25s.tokenization import Tokenized

    tokenizer = make_tokenizer(stopwords, stem_language)
    pids: list[str] = []
    token_ids: list[np.ndarray] = []
    chunk: list[str] = []

    def flush() -> None:
        ids = tokenizer.tokenize(chunk, update_vocab=True, return_as="ids", show_progress=False)
        token_ids.extend(np.asarray(x, dtype=np.int32) for x in ids)
        chunk.clear()

    # ``with``: the bar is closed before an input error is printed, not after it
    with tqdm(desc="bm25 tokenize", unit=" passages", mininterval=2) as bar:
        for pid, title, text in iter_corpus(corpus_file):
            pids.append(pid)
            chunk.append(f"{title} {text}".strip())
            if len(chunk) >= chunk_size:
                flush()
                bar.update(chunk_size)
        n_last = len(chunk)
        if chunk:
            flush()
        bar.update(n_last)
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(Tokenized(ids=token_ids, vocab=tokenizer.get_vocab_dict()), show_progress=False)
    return retriever, tokenizer, pids


def save_index(retriever, tokenizer, pids: list[str], index_dir: str | Path) -> None:
    """Save atomically (:func:`cross_encoder.io.atomic_dir`)."""
    with atomic_dir(index_dir) as tmp:
        retriever.save(tmp)
        tokenizer.save_vocab(tmp)
        tokenizer.save_stopwords(tmp)
        write_text(tmp / "pids.txt", "\n".join(pids) + "\n")


def load_index(index_dir: str | Path, stem_language: str | None = "english"):
    """A saved BM25 index: ``(retriever, tokenizer, pids)``."""
    import bm25s

    retriever = bm25s.BM25.load(index_dir)
    tokenizer = make_tokenizer(None, stem_language)
    tokenizer.load_vocab(index_dir)
    tokenizer.load_stopwords(index_dir)
    pids = Path(index_dir, "pids.txt").read_text(encoding="utf-8").splitlines()
    return retriever, tokenizer, pids


def iter_search(
    retriever,
    tokenizer,
    pids: list[str],
    queries: dict[str, str],
    depth: int,
    batch_size: int = 1000,
) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """``(qid, [(pid, score), ...])`` per query in query-file order, best first, at most
    ``depth`` (and only score > 0). Batches of queries, so memory does not grow with the
    number of queries (800k MS MARCO train queries x depth 200 would not fit as a dict)."""
    from bm25s.tokenization import Tokenized

    k = min(depth, len(pids))
    qids = list(queries)
    vocab = tokenizer.get_vocab_dict()
    for start in tqdm(range(0, len(qids), batch_size), desc="bm25 retrieve", mininterval=2):
        batch = qids[start : start + batch_size]
        ids = tokenizer.tokenize(
            [queries[q] for q in batch], update_vocab=False, return_as="ids", show_progress=False
        )
        docs, scores = retriever.retrieve(
            Tokenized(ids=ids, vocab=vocab), k=k, show_progress=False, n_threads=1
        )
        for q, d, s in zip(batch, docs, scores, strict=True):
            yield q, [(pids[int(i)], float(v)) for i, v in zip(d, s, strict=True) if v > 0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.first_stage.bm25", description=__doc__
    )
    p.add_argument("--corpus_file", help="corpus TSV or BEIR jsonl (not needed with a saved index)")
    p.add_argument("--index_dir", help="save the index here, or load it if it exists")
    p.add_argument("--query_file", help="queries to retrieve for")
    p.add_argument("--output_ranking", help="qid\\tpid\\trank\\tscore")
    p.add_argument("--qrels_file", help="with --output_neg_file: positives to leave out")
    p.add_argument("--output_neg_file", help="qid\\tpid,pid,... hard negatives")
    p.add_argument("--depth", type=int, default=1000)
    p.add_argument("--k1", type=float, default=1.5)
    p.add_argument("--b", type=float, default=0.75)
    p.add_argument("--stopwords", default="en", help="bm25s stopword list; '' for none")
    p.add_argument("--stemmer", default="english", help="PyStemmer language; '' for none")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.depth < 1:
        raise InputError(None, "--depth must be >= 1")
    if args.output_neg_file and not args.qrels_file:
        raise InputError(None, "--output_neg_file needs --qrels_file")
    stop = args.stopwords or None
    stem = args.stemmer or None
    # Read the small inputs before the (long) indexing, so that a bad query or qrels file
    # fails at once and leaves no index or ranking behind.
    queries = read_queries(args.query_file) if args.query_file else None
    pos: dict[str, list[str]] = {}
    if args.output_neg_file:
        if queries is None:
            raise InputError(None, "--output_neg_file needs --query_file")
        pos = read_positives(args.qrels_file)
        check_qrels_ids(args.qrels_file, pos, queries, args.query_file)
    if args.index_dir and Path(args.index_dir, "pids.txt").exists():
        retriever, tokenizer, pids = load_index(args.index_dir, stem)
    else:
        if not args.corpus_file:
            raise InputError(None, "--corpus_file is required to build the index")
        retriever, tokenizer, pids = build_index(args.corpus_file, args.k1, args.b, stop, stem)
        logger.info("indexed %d passages", len(pids))
        if args.index_dir:
            save_index(retriever, tokenizer, pids, args.index_dir)
    if queries is None:
        return 0
    if pos:
        judged = {p for ps in pos.values() for p in ps}
        missing = judged.difference(pids)
        if missing:
            logger.warning(
                "%s: %d of %d judged passages are not in the corpus",
                args.qrels_file,
                len(missing),
                len(judged),
            )
    # Streamed: each batch of queries is written as it is retrieved (atomically, as a whole).
    n = 0
    with contextlib.ExitStack() as stack:
        ranking_f = (
            stack.enter_context(atomic_write(args.output_ranking)) if args.output_ranking else None
        )
        neg_f = (
            stack.enter_context(atomic_write(args.output_neg_file))
            if args.output_neg_file
            else None
        )
        for qid, ranked in iter_search(retriever, tokenizer, pids, queries, args.depth):
            n += 1
            if ranking_f is not None:
                for rank, (pid, score) in enumerate(ranked, start=1):
                    ranking_f.write(f"{qid}\t{pid}\t{rank}\t{format_score(score)}\n")
            if neg_f is not None and qid in pos:
                negs = hard_negatives({qid: [p for p, _ in ranked]}, {qid: pos[qid]})[qid]
                if negs:
                    neg_f.write(f"{qid}\t{','.join(negs)}\n")
    logger.info("retrieved for %d queries", n)
    return 0


def check_qrels_ids(
    qrels_file: str, pos: dict[str, list[str]], queries: dict[str, str], query_file: str
) -> None:
    """Error when no judged query is in the query file, warn with counts when some are not."""
    check_overlap(
        qrels_file,
        pos,
        queries,
        none=f"none of its {{n}} judged queries are in {query_file} (e.g. {{example}}); "
        "check that qrels and queries belong together",
        some=f"{{missing}} of {{n}} judged queries are not in {query_file}; they get no negatives",
    )


if __name__ == "__main__":
    raise SystemExit(main())
