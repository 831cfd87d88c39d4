"""Training groups and prediction pairs built from pre-tokenized collections.

* the pair format (:class:`~cross_encoder.modeling.pairs.PairTemplate`) lives with the model,
  :mod:`cross_encoder.modeling.pairs`; it is imported here under its old path too.
* :class:`TrainDataset` yields one group per query: its positive first, then G-1 negatives
  drawn afresh on every fetch from ranks ``sample_neg_skip_topk + 1 .. sample_neg_from_topk``
  of the neg_file (the skipped top ranks are where unlabelled positives sit), ``random_negatives``
  of them uniformly from the corpus instead, and filled with random non-positive corpus
  passages when a query has too few.
* :class:`GroupCollator` pads a batch of groups dynamically to its longest pair.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairTemplate  # noqa: F401  (also its old path)

logger = logging.getLogger(__name__)


class TrainDataset(Dataset):
    """One group per training query: positive first, then ``group_size - 1`` negatives.

    Sampling is seeded by ``(seed, epoch, index)``, so a run is reproducible, every epoch
    sees new negatives, and a resumed run draws what the uninterrupted one would have.
    """

    def __init__(
        self,
        queries: TokenizedCollection,
        corpus: TokenizedCollection,
        positives: Mapping[str, Sequence[str]],
        negatives: Mapping[str, Sequence[str]],
        group_size: int = 8,
        sample_neg_from_topk: int = 200,
        seed: int = 42,
        sample_neg_skip_topk: int = 0,
        random_negatives: int = 0,
    ):
        if group_size < 2:
            raise ValueError("train_group_size must be >= 2 (a positive and a negative)")
        if not 0 <= sample_neg_skip_topk < sample_neg_from_topk:
            raise ValueError("sample_neg_skip_topk must be >= 0 and < sample_neg_from_topk")
        if not 0 <= random_negatives <= group_size - 1:
            raise ValueError("random_negatives must be between 0 and train_group_size - 1")
        self.queries = queries
        self.corpus = corpus
        self.group_size = group_size
        self.seed = seed
        self.random_negatives = random_negatives
        self.epoch = 0
        self.qids = [q for q in positives if q in queries]
        self.positives = {q: list(positives[q]) for q in self.qids}
        # each query's negatives as int32 corpus rows (4 bytes a negative, not a Python
        # string: 500k queries x 200 negatives are 0.4 GB, not ~25 GB per rank); a value
        # may be pids or, as load_training_data passes them, an array of rows already
        self.negatives: dict[str, np.ndarray] = {}
        for q in self.qids:
            negs = negatives.get(q, ())
            if not isinstance(negs, np.ndarray):
                negs = np.fromiter((corpus.row[p] for p in negs), dtype=np.int32)
            pos = [corpus.row[p] for p in self.positives[q] if p in corpus.row]
            ranked = negs[~np.isin(negs, pos)] if pos else negs
            self.negatives[q] = ranked[sample_neg_skip_topk:sample_neg_from_topk].copy()
        k = group_size - 1 - random_negatives
        self.n_short = sum(len(v) < k for v in self.negatives.values())
        if self.n_short:
            logger.info(
                "%d of %d queries have fewer than %d negatives; filled with random passages",
                self.n_short,
                len(self.qids),
                k,
            )

    def __len__(self) -> int:
        return len(self.qids)

    def set_epoch(self, epoch: int) -> None:
        """Draw the next fetches' negatives for this epoch (``EpochSetter`` calls it)."""
        self.epoch = epoch

    def sample(self, idx: int) -> tuple[str, list[str]]:
        """The query id and the group's passage ids (positive first) for this fetch."""
        rng = random.Random(f"{self.seed}-{self.epoch}-{idx}")
        qid = self.qids[idx]
        pos = self.positives[qid]
        negs = self.negatives[qid]
        k = self.group_size - 1
        hard = k - self.random_negatives
        # the indices rng.sample draws from range(n) are those it draws from any n-list
        picks = rng.sample(range(len(negs)), hard) if len(negs) >= hard else range(len(negs))
        chosen = [self.corpus.ids[negs[j]] for j in picks]
        taken = set(pos) | set(chosen)
        if len(self.corpus) - len(taken) < k - len(chosen):
            raise ValueError("corpus too small for train_group_size")
        while len(chosen) < k:  # random negatives, and the fill for short neg lists
            p = self.corpus.ids[rng.randrange(len(self.corpus))]
            if p not in taken:
                chosen.append(p)
                taken.add(p)
        return qid, [rng.choice(pos), *chosen]

    def __getitem__(self, idx: int) -> tuple[list[int], list[list[int]]]:
        qid, pids = self.sample(idx)
        return self.queries.tokens(qid), [self.corpus.tokens(p) for p in pids]


@dataclass
class GroupCollator:
    """Flatten a batch of groups into ``B*G`` padded pairs (each group's positive first)."""

    template: PairTemplate

    def __call__(self, batch: list[tuple[list[int], list[list[int]]]]) -> dict[str, torch.Tensor]:
        """``B`` groups of ``G`` -> padded model inputs of ``B*G`` pairs, group by group."""
        pairs = [self.template.build(q, p) for q, group in batch for p in group]
        return self.template.pad(pairs)


def load_training_data(data_args, seed: int, corpus: TokenizedCollection) -> TrainDataset:
    """The training groups from ``--train_query_file``, ``--train_qrels`` and ``--neg_file``
    (RetroMAE's files): ids not in the tokenized files are dropped with a warning, an error if
    none is there; without a neg_file the negatives are random corpus passages."""
    from cross_encoder.io import InputError, positives, read_qrels, require_path

    why = "with --do_train"
    queries = TokenizedCollection.load(
        require_path(data_args.train_query_file, "--train_query_file", why),
        data_args.train_query_id_file,
    )
    qrels_path = require_path(data_args.train_qrels, "--train_qrels", why)
    pos = positives(read_qrels(qrels_path))
    queries.check_ids(qrels_path, pos, "query")
    missing_p = corpus.check_ids(qrels_path, (p for v in pos.values() for p in v), "passage")
    pos = {q: [p for p in v if p not in missing_p] for q, v in pos.items() if q in queries}
    pos = {q: v for q, v in pos.items() if v}
    negs: dict[str, np.ndarray] = {}
    if data_args.neg_file:
        negs = read_negative_rows(require_path(data_args.neg_file, "--neg_file", why), corpus, pos)
    else:
        logger.warning("no --neg_file: negatives are random corpus passages")
    dataset = TrainDataset(
        queries,
        corpus,
        pos,
        negs,
        group_size=data_args.train_group_size,
        sample_neg_from_topk=data_args.sample_neg_from_topk,
        seed=seed,
        sample_neg_skip_topk=data_args.sample_neg_skip_topk,
        random_negatives=data_args.random_negatives,
    )
    if len(dataset) == 0:
        raise InputError(qrels_path, "no training query has a positive in the corpus")
    return dataset


def read_negative_rows(
    path, corpus: TokenizedCollection, keep: Mapping[str, object]
) -> dict[str, np.ndarray]:
    """The neg_file's negatives of the queries in ``keep`` as int32 corpus rows (repeated
    qids concatenate), streamed line by line; passages not in the corpus are dropped with
    the warning (or, when none is there, the error) of ``corpus.check_ids`` over every id
    of the file."""
    from cross_encoder.io import iter_neg_file

    seen = np.zeros(len(corpus), dtype=bool)  # the file's distinct known ids
    unknown: dict[str, None] = {}  # and its unknown ones, in order of appearance
    parts: dict[str, list[np.ndarray]] = {}
    row = corpus.row
    for qid, pids in iter_neg_file(path):
        rows = np.fromiter((row.get(p, -1) for p in pids), dtype=np.int64, count=len(pids))
        known = rows >= 0
        if not known.all():
            unknown.update((p, None) for p, k in zip(pids, known, strict=True) if not k)
            rows = rows[known]
        seen[rows] = True
        if qid in keep:
            parts.setdefault(qid, []).append(rows.astype(np.int32))
    ids = itertools.chain(unknown, (corpus.ids[r] for r in np.flatnonzero(seen)))
    corpus.check_ids(path, ids, "passage")
    return {q: v[0] if len(v) == 1 else np.concatenate(v) for q, v in parts.items()}
