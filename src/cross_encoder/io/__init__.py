"""Every file format the pipeline reads or writes, in one place.

Formats (see ``docs/formats`` in the README):

* corpus: MS MARCO / RetroMAE TSV ``pid\\ttitle\\ttext`` or ``pid\\ttext``; BEIR ``corpus.jsonl``
* queries: TSV ``qid\\ttext``; BEIR ``queries.jsonl``
* qrels: ``qid\\tpid`` (RocketQA dev), ``qid\\tpid1,pid2`` (train_qrels.txt),
  ``qid 0 pid rel`` (TREC, tab or space), BEIR ``qrels/*.tsv`` with a header
* rankings: ``qid\\tpid\\trank\\tscore``, ``qid\\tpid``, TREC runs ``qid Q0 pid rank score tag``
* neg_file: ``qid\\tpid,pid,...`` (repeated qids concatenate)
* scores: ``qid\\tpid\\tscore`` (also RetroMAE's ``[3.14]``)

Every reader raises :class:`InputError` with ``path:line: what is wrong`` on bad input;
:func:`cli` turns that into a one-line message and exit status 2. CRLF line ends and a
UTF-8 byte-order mark are accepted everywhere. Every writer writes atomically (a temp file
in the same directory, then ``os.replace``), so a killed process never leaves a file that
looks complete.

Modules: :mod:`~cross_encoder.io.readers`, :mod:`~cross_encoder.io.writers`,
:mod:`~cross_encoder.io.atomic` (``atomic_write`` for files, ``atomic_dir`` for every folder
output), :mod:`~cross_encoder.io.cli` (``cli``, ``setup_logging``) and
:mod:`~cross_encoder.io.collection` (the tokenized collections in ``datasets``' on-disk
layout; imported on its own, as it needs pyarrow). Everything but the last is re-exported here.
"""

from cross_encoder.io.atomic import atomic_dir, atomic_write, remove_stale_temps
from cross_encoder.io.cli import cli, require_path, setup_logging
from cross_encoder.io.errors import InputError, PathLike
from cross_encoder.io.readers import (
    RankedPair,
    check_overlap,
    iter_corpus,
    iter_lines,
    iter_neg_file,
    iter_ranking,
    iter_scores,
    positives,
    read_json,
    read_neg_file,
    read_positives,
    read_qrels,
    read_queries,
    read_ranking,
    read_scores,
)
from cross_encoder.io.writers import (
    format_score,
    write_corpus,
    write_json,
    write_neg_file,
    write_qrels,
    write_qrels_pairs,
    write_queries,
    write_ranking,
    write_scores,
    write_text,
)

__all__ = [
    "InputError",
    "PathLike",
    "RankedPair",
    "atomic_dir",
    "atomic_write",
    "check_overlap",
    "cli",
    "format_score",
    "iter_corpus",
    "iter_lines",
    "iter_neg_file",
    "iter_ranking",
    "iter_scores",
    "positives",
    "read_json",
    "read_neg_file",
    "read_positives",
    "read_qrels",
    "read_queries",
    "read_ranking",
    "read_scores",
    "remove_stale_temps",
    "require_path",
    "setup_logging",
    "write_corpus",
    "write_json",
    "write_neg_file",
    "write_qrels",
    "write_qrels_pairs",
    "write_queries",
    "write_ranking",
    "write_scores",
    "write_text",
]
