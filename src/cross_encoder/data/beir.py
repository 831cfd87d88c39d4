"""Turn a BEIR dataset into the pipeline's query and qrels files, with a dev split carved
out of train (BEIR datasets such as SciFact have none).

    python -m cross_encoder.data.beir --data_dir ../shared/data/scifact \\
        --output_dir results/data/beir-scifact --n_dev 100 --seed 0

Reads ``queries.jsonl`` and ``qrels/{train,test}.tsv`` from ``--data_dir`` and writes
``{train,dev,test}.query.txt`` (``qid\\ttext``) and ``qrels.{train,dev,test}.tsv`` (4
columns, ``qid\\t0\\tpid\\trel``) to ``--output_dir``. The corpus is not copied: the workflow
reads ``corpus.jsonl`` in place.

The dev split is ``n_dev`` train queries that have a positive judgment, drawn with
``random.Random(seed)`` from the sorted qids, so the same inputs and seed always give the same
split; dev and train are disjoint, and test is passed through untouched (it is for the final
number only).
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Mapping
from pathlib import Path

from cross_encoder.io import (
    InputError,
    cli,
    read_qrels,
    read_queries,
    setup_logging,
    write_qrels,
    write_queries,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


def split_dev(
    train_qrels: Mapping[str, Mapping[str, int]], n_dev: int, seed: int
) -> tuple[list[str], list[str]]:
    """``(train_qids, dev_qids)``, both sorted: ``n_dev`` judged train queries become dev."""
    judged = sorted(q for q, docs in train_qrels.items() if any(r > 0 for r in docs.values()))
    if n_dev < 0 or n_dev >= len(judged):
        raise InputError(
            None, f"--n_dev {n_dev}: need 0 <= n_dev < {len(judged)} (judged train queries)"
        )
    dev = set(random.Random(seed).sample(judged, n_dev))
    train = sorted(q for q in train_qrels if q not in dev)
    return train, sorted(dev)


def prepare(data_dir: str | Path, output_dir: str | Path, n_dev: int = 100, seed: int = 0):
    """Write the split files; return ``{split: number of queries}``."""
    data_dir, output_dir = Path(data_dir), Path(output_dir)
    queries = read_queries(data_dir / "queries.jsonl")
    train_qrels = read_qrels(data_dir / "qrels" / "train.tsv")
    test_qrels = read_qrels(data_dir / "qrels" / "test.tsv")
    train, dev = split_dev(train_qrels, n_dev, seed)
    test = sorted(test_qrels)
    if set(test) & set(train_qrels):
        raise InputError(data_dir / "qrels", "train and test share query ids")
    for split, qids in (("train", train), ("dev", dev), ("test", test)):
        missing = [q for q in qids if q not in queries]
        if missing:
            raise InputError(
                data_dir / "queries.jsonl",
                f"{len(missing)} {split} qids missing, e.g. {missing[0]!r}",
            )
    output_dir.mkdir(parents=True, exist_ok=True)
    qrels = {**train_qrels, **test_qrels}
    counts = {}
    for split, qids in (("train", train), ("dev", dev), ("test", test)):
        write_queries(
            output_dir / f"{split}.query.txt", ((q, " ".join(queries[q].split())) for q in qids)
        )
        write_qrels(output_dir / f"qrels.{split}.tsv", {q: qrels[q] for q in qids})
        counts[split] = len(qids)
    logger.info("wrote %s to %s", counts, output_dir)
    return counts


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m cross_encoder.data.beir", description=__doc__)
    p.add_argument("--data_dir", required=True, help="BEIR dataset folder (queries.jsonl, qrels/)")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--n_dev", type=int, default=100, help="train queries moved to dev")
    p.add_argument("--seed", type=int, default=0, help="seed of the dev split")
    args = p.parse_args(argv)
    setup_logging()
    prepare(args.data_dir, args.output_dir, args.n_dev, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
