"""Tokenize the corpus, train and dev queries once, into folders RetroMAE's code loads.

RetroMAE's ``preprocess.py`` with the same flags::

    python -m cross_encoder.preprocess --tokenizer_name microsoft/deberta-v3-base \\
        --max_seq_length 150 --output_dir ./data/DebertaTokenizer_data --use_title

Writes ``<output_dir>/{corpus,train_query,dev_query}/`` and ``<output_dir>/train_qrels.txt``
(``qid\\tpid``). Each folder is what RetroMAE's preprocess writes with ``datasets``'
``save_to_disk`` (columns ``id`` and ``input_ids``, int32, in input order), which
``datasets.load_from_disk`` loads, 1.18.3 as well as current versions
(:mod:`cross_encoder.io.collection`), with ``mapping_id.txt``, plus
``tokenizer_identity.json``: which tokenizer made the ids, see
:mod:`cross_encoder.modeling.tokenizer_identity`.
An empty ``--corpus_file``, ``--train_query_file`` or ``--dev_query_file`` leaves that part out
(the workflow tokenizes the corpus, the train queries with their qrels, and each evaluation
query set as jobs of their own); train_qrels.txt without the corpus checks the passage ids
against the corpus folder already in ``--output_dir``.
Text is tokenized with the fast tokenizer, without special tokens, truncated to
``max_seq_length``; with ``--use_title`` a passage is ``title [SEP] text``. The corpus is
streamed in chunks, so memory stays flat whatever its size.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
from pathlib import Path

from tqdm.auto import tqdm

from cross_encoder.io import (
    InputError,
    check_overlap,
    cli,
    iter_corpus,
    read_positives,
    read_queries,
    remove_stale_temps,
    setup_logging,
    write_qrels_pairs,
)
from cross_encoder.io.collection import CollectionWriter, batched
from cross_encoder.modeling import load_tokenizer, tokenizer_identity

logger = logging.getLogger(__name__)


def passage_text(title: str, text: str, sep: str, use_title: bool) -> str:
    """A passage as it is tokenized: ``title [SEP] text`` with ``use_title``, else its text."""
    if use_title and title:
        return f"{title} {sep} {text}" if text else title
    return text or title


def tokenize(tokenizer, texts: list[str], max_len: int) -> list[list[int]]:
    """Token ids of ``texts`` (no special tokens), cut to ``max_len``."""
    enc = tokenizer(
        texts,
        add_special_tokens=False,
        truncation=True,
        max_length=max_len,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return enc["input_ids"]


def tokenize_corpus(
    corpus_file: str | Path,
    out_dir: str | Path,
    tokenizer,
    max_len: int,
    use_title: bool,
    chunk_size: int = 10_000,
) -> list[str]:
    """Stream the corpus into ``out_dir`` chunk by chunk; return the passage ids written."""
    writer = CollectionWriter(out_dir)
    n = 0
    try:
        with tqdm(
            desc=f"tokenize {Path(corpus_file).name}", unit=" passages", mininterval=2
        ) as bar:
            for chunk in batched(iter_corpus(corpus_file), chunk_size):
                ids = [pid for pid, _, _ in chunk]
                texts = [passage_text(t, x, tokenizer.sep_token, use_title) for _, t, x in chunk]
                writer.write(ids, tokenize(tokenizer, texts, max_len))
                n += len(chunk)
                bar.update(len(chunk))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return writer.ids


def tokenize_queries(
    query_file: str | Path,
    out_dir: str | Path,
    tokenizer,
    max_len: int,
    queries: dict[str, str] | None = None,
) -> dict[str, str]:
    """Tokenize a query file into a folder; returns the queries read."""
    if queries is None:
        queries = read_queries(query_file)
    writer = CollectionWriter(out_dir)
    try:
        for chunk in batched(
            tqdm(list(queries.items()), desc=f"tokenize {Path(query_file).name}", mininterval=2),
            10_000,
        ):
            writer.write([q for q, _ in chunk], tokenize(tokenizer, [t for _, t in chunk], max_len))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return queries


def check_qrels_ids(qrels_file: str, pos: dict[str, list[str]], queries: dict[str, str]) -> None:
    """Warn (with counts) when qrels cover queries that are not in the query file (normal: the
    official qrels judge more queries than a query subset has); error when none overlap
    (almost always the wrong pair of files)."""
    check_overlap(
        qrels_file,
        pos,
        queries,
        none="none of its {n} query ids are in the query file (e.g. {example}); "
        "check that qrels and queries belong together",
        some="{missing} of {n} judged queries are not in the query file; they are skipped",
    )


def check_qrels_pids(qrels_file: str, pos: dict[str, list[str]], pids: set[str]) -> None:
    """Warn (with counts) when judged passages are not in the corpus (a corpus subset);
    error when none are (the wrong corpus)."""
    check_overlap(
        qrels_file,
        sorted({p for ps in pos.values() for p in ps}),
        pids,
        none="none of its {n} judged passage ids are in the corpus (e.g. {example}); "
        "check that qrels and corpus belong together",
        some="{missing} of {n} judged passages are not in the corpus; left out of train_qrels.txt",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.preprocess", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--tokenizer_name", required=True, help="HF tokenizer name or local path")
    p.add_argument(
        "--max_len",
        "--max_seq_length",  # the seed's spelling
        dest="max_len",
        type=int,
        default=512,
        help="truncate each query and passage to this many tokens",
    )
    p.add_argument("--output_dir", required=True)
    p.add_argument("--use_title", action="store_true", help="passage = title [SEP] text")
    p.add_argument(
        "--corpus_file", default="./data/corpus.tsv", help="TSV or BEIR jsonl; '' to skip"
    )
    p.add_argument(
        "--train_query_file",
        default="./data/train.query.txt",
        help="'' to skip (and train_qrels.txt with it)",
    )
    p.add_argument("--dev_query_file", default="./data/dev.query.txt", help="'' to skip")
    p.add_argument(
        "--train_qrels",
        "--train_qrels_file",  # RetroMAE preprocess.py's spelling
        dest="train_qrels",
        default="./data/qrels.train.tsv",
    )
    p.add_argument("--test_query_file", default="", help="optional third query set -> test_query/")
    p.add_argument("--trust_remote_code", action="store_true")
    p.add_argument("--chunk_size", type=int, default=10_000, help="passages per tokenizer call")
    return p


# The staging folder is .preprocess.<pid>.tmp: jobs tokenizing other parts may run at once.
STAGE = "preprocess"


def corpus_ids(folder: Path) -> set[str]:
    """Passage ids of a tokenized corpus folder (its ``mapping_id.txt``)."""
    from cross_encoder.io import iter_lines
    from cross_encoder.io.collection import MAPPING_FILE

    mapping = folder / MAPPING_FILE
    if not mapping.exists():
        raise InputError(
            folder,
            "no tokenized corpus here: train_qrels.txt checks its passage ids against it; "
            "tokenize the corpus first (--corpus_file)",
        )
    return {line.split("\t", 1)[0] for _, line in iter_lines(mapping)}


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.max_len < 1:
        raise InputError(None, "--max_len must be >= 1")
    if args.chunk_size < 1:
        raise InputError(None, "--chunk_size must be >= 1")
    train = bool(args.train_query_file)
    inputs = (args.corpus_file, args.train_query_file, args.dev_query_file, args.test_query_file)
    for f in (*inputs, args.train_qrels if train else ""):
        if f and not os.path.exists(f):
            raise InputError(f, "no such file")
    # Small inputs first: a wrong query or qrels file fails in seconds, not after the corpus.
    query_files = {}
    if train:
        query_files["train_query"] = args.train_query_file
    if args.dev_query_file:
        query_files["dev_query"] = args.dev_query_file
    if args.test_query_file:
        query_files["test_query"] = args.test_query_file
    if not (args.corpus_file or query_files):
        raise InputError(None, "nothing to tokenize: every input file is ''")
    queries = {name: read_queries(path) for name, path in query_files.items()}
    pos = None
    if train:
        pos = read_positives(args.train_qrels)
        check_qrels_ids(args.train_qrels, pos, queries["train_query"])
        pos = {q: p for q, p in pos.items() if q in queries["train_query"]}
    tok = load_tokenizer(args.tokenizer_name, args.trust_remote_code)
    identity = tokenizer_identity.build(tok, args.tokenizer_name, args.max_len, args.use_title)

    # Everything is written into a staging folder and renamed into place only when all of it
    # is complete: an error or a kill leaves no output that looks finished.
    out = Path(args.output_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out / STAGE)  # left over by a killed run
    stage = out / f".{STAGE}.{os.getpid()}.tmp"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    parts = [*query_files, *(["corpus"] if args.corpus_file else [])]
    try:
        if args.corpus_file:
            pids = tokenize_corpus(
                args.corpus_file,
                stage / "corpus",
                tok,
                args.max_len,
                args.use_title,
                args.chunk_size,
            )
            logger.info("corpus: %d passages", len(pids))
            pid_set = set(pids) if pos is not None else set()
            del pids
        elif pos is not None:
            pid_set = corpus_ids(out / "corpus")
        if pos is not None:
            check_qrels_pids(args.train_qrels, pos, pid_set)
            pos = {q: [p for p in ps if p in pid_set] for q, ps in pos.items()}
            pos = {q: ps for q, ps in pos.items() if ps}
            del pid_set
        for name, path in query_files.items():
            tokenize_queries(path, stage / name, tok, args.max_len, queries[name])
            logger.info("%s: %d queries", name, len(queries[name]))
        for name in parts:
            tokenizer_identity.write(stage / name, identity)
        if pos is not None:
            write_qrels_pairs(stage / "train_qrels.txt", pos)
            logger.info(
                "train qrels: %d queries, %d positives", len(pos), sum(map(len, pos.values()))
            )
            parts.append("train_qrels.txt")
        for name in parts:
            dst = out / name
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            elif dst.exists() or dst.is_symlink():
                dst.unlink()
            os.replace(stage / name, dst)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty: other jobs may be writing their parts here
        raise
    stage.rmdir()
    logger.info("wrote %s", ", ".join(str(out / n) for n in parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
