"""What RetroMAE's own code does with tokenized folders, reproduced with ``datasets`` and its
documented file formats (staoxiao/RetroMAE @ee37587: ``examples/retriever/msmarco/
preprocess.py``, ``src/bi_encoder/data.py``), for tests that need no copy of RetroMAE.

* :func:`retromae_preprocess`: its preprocess: the raw files to JSON lines and
  ``mapping_id.txt``, ``datasets.load_dataset("json")``, a batched ``map`` that tokenizes
  (``add_special_tokens=False``, truncation) and drops the text columns, ``save_to_disk``.
* :class:`BiEncoderGroups`: its bi-encoder's ``TrainDatasetForBiE``: ``load_from_disk`` the
  corpus and train queries, row numbers from ``mapping_id.txt``, ``train_qrels.txt``,
  the neg_file, teacher scores (``qid pid score``, ``[x]`` stripped); a group is one random
  positive and ``train_group_size - 1`` negatives sampled from the first
  ``sample_neg_from_topk`` of the neg_file, each with its token ids and teacher score (a
  missing score is a ``KeyError`` there, as in RetroMAE).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path


def _to_json(src: Path, dst: Path, id_file: Path) -> None:
    with open(dst, "w", encoding="utf-8") as out, open(id_file, "w", encoding="utf-8") as ids:
        for row, line in enumerate(src.read_text(encoding="utf-8").splitlines()):
            cols = line.split("\t")
            rec = {"id": cols[0], "text": cols[1]}
            if len(cols) > 2:
                rec = {"id": cols[0], "title": cols[1], "text": cols[2]}
            out.write(json.dumps(rec) + "\n")
            ids.write(f"{cols[0]}\t{row}\n")


def retromae_preprocess(
    tokenizer, files: dict[str, Path], out: Path, max_len: int, use_title: bool = False
) -> Path:
    """Tokenize ``files`` (``corpus``, ``train_queries``, ``dev_queries``, ``train_qrels``) into
    ``out`` as RetroMAE's preprocess does."""
    import datasets

    out.mkdir(parents=True, exist_ok=True)
    work = out / "_json"
    work.mkdir()

    def tokenize(batch):
        texts = batch["text"]
        if "title" in batch and use_title:
            texts = [
                t + tokenizer.sep_token + x
                for t, x in zip(batch["title"], batch["text"], strict=True)
            ]
        return tokenizer(
            texts,
            add_special_tokens=False,
            truncation=True,
            max_length=max_len,
            return_attention_mask=False,
            return_token_type_ids=False,
        )

    with open(out / "train_qrels.txt", "w", encoding="utf-8") as f:
        for line in files["train_qrels"].read_text(encoding="utf-8").splitlines():
            cols = line.strip().split("\t")
            f.write(f"{cols[0]}\t{cols[2]}\n")
    for name, key in [
        ("corpus", "corpus"),
        ("train_query", "train_queries"),
        ("dev_query", "dev_queries"),
    ]:
        (out / name).mkdir()
        _to_json(files[key], work / f"{name}.json", out / name / "mapping_id.txt")
        ds = datasets.load_dataset(
            "json", data_files=str(work / f"{name}.json"), split="train", cache_dir=str(work)
        )
        drop = [c for c in ("title", "text") if c in ds.column_names]
        ds = ds.map(tokenize, batched=True, remove_columns=drop)
        ds.save_to_disk(str(out / name))
    import shutil

    shutil.rmtree(work)
    return out


def read_mapping_id(path: Path) -> dict[str, int]:
    ids = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        orig, row = line.strip().split("\t")
        ids[orig] = int(row)
    return ids


class BiEncoderGroups:
    """RetroMAE's ``TrainDatasetForBiE`` without the tokenizer's special tokens: item ``i`` is
    ``(qid, query ids, [(pid, passage ids)], teacher scores)`` for the i-th train_qrels line."""

    def __init__(
        self,
        folder: Path,
        neg_file: Path,
        teacher_score_files: str,
        train_group_size: int,
        sample_neg_from_topk: int,
        seed: int = 0,
    ):
        import datasets

        self.corpus = datasets.Dataset.load_from_disk(str(folder / "corpus"))
        self.queries = datasets.Dataset.load_from_disk(str(folder / "train_query"))
        self.corpus_id = read_mapping_id(folder / "corpus" / "mapping_id.txt")
        self.query_id = read_mapping_id(folder / "train_query" / "mapping_id.txt")
        self.qrels = []
        for line in (folder / "train_qrels.txt").read_text(encoding="utf-8").splitlines():
            qid, pids = line.split("\t")
            self.qrels.append((qid, pids.split(",")))
        self.negs: dict[str, list[str]] = defaultdict(list)
        for line in Path(neg_file).read_text(encoding="utf-8").splitlines():
            qid, pids = line.split("\t")
            self.negs[qid].extend(pids.split(","))
        self.scores: dict[str, dict[str, float]] = defaultdict(dict)
        for path in teacher_score_files.split(","):
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                qid, pid, score = line.strip().split()
                self.scores[qid][pid] = float(score.strip("[]"))
        self.group_size = train_group_size
        self.topk = sample_neg_from_topk
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.qrels)

    def __getitem__(self, i: int):
        qid, pos = self.qrels[i]
        query = self.queries[self.query_id[qid]]["input_ids"]
        pid = self.rng.choice(pos)
        offered = self.negs[qid][: self.topk]
        if len(offered) < self.group_size - 1:  # RetroMAE: random corpus passages (no score)
            extra = self.rng.sample(list(self.corpus_id), self.group_size - 1 - len(offered))
            negs = extra + offered
        else:
            negs = self.rng.sample(offered, self.group_size - 1)
        group = [(p, self.corpus[self.corpus_id[p]]["input_ids"]) for p in [pid, *negs]]
        scores = [self.scores[qid][p] for p, _ in group]
        return qid, query, group, scores
