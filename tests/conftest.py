"""Shared fixtures: a tiny WordPiece tokenizer + random BERT cross-encoder, and tiny MS MARCO-
format data (raw and preprocessed). Everything is built offline in a few seconds."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tiny models: one thread each is fastest, and torchrun children share the cores
os.environ.setdefault("OMP_NUM_THREADS", "1")

_TEXT = (
    "cat dog fox rabbit bird fish horse cow owl bee river lake hill road town city "
    "red blue green brown grey black white big small old young fast slow chased saw "
    "gave sold bought ate found kept met helped apple zebra bread milk stone coin "
    "book lamp chair table the a of in on near to and not never why what who where "
    "how do does did is was "
)
WORDS = _TEXT.split()  # noqa: SIM905
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA_KEYS = ("corpus", "train_queries", "dev_queries", "train_qrels", "dev_qrels")
# words for tests that write their own small corpora (test_robustness)
ANIMALS = ["fox", "rabbit", "horse", "eagle", "otter", "badger", "heron", "wolf"]
VERBS = ["chased", "followed", "watched", "helped"]
PLACES = ["river", "forest", "hill", "barn"]


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


def pytest_collection_modifyitems(config, items):
    if _cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def precision_cache(tmp_path_factory) -> Path:
    """precision auto's per-machine timing cache: one per test session (inherited by the
    CLIs and workflows the tests start), not the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cross_encoder_cache")
    old = os.environ.get("CROSS_ENCODER_CACHE_DIR")
    os.environ["CROSS_ENCODER_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("CROSS_ENCODER_CACHE_DIR", None)
    else:
        os.environ["CROSS_ENCODER_CACHE_DIR"] = old


def build_tokenizer(out_dir: Path, shuffle_seed: int | None = None) -> int:
    """A BERT-style fast tokenizer (uncased WordPiece) over the toy vocabulary. With
    ``shuffle_seed`` the words get other ids (same architecture, size and special tokens)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    words = sorted(set(WORDS))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(words)
    vocab = {t: i for i, t in enumerate(SPECIAL + words)}
    # single characters and ## continuations, so unknown words still tokenize
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789":
        for t in (ch, f"##{ch}"):
            vocab.setdefault(t, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        do_lower_case=True,
    )
    fast.save_pretrained(out_dir)
    return len(vocab)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random 2-layer, hidden-32 ``BertForSequenceClassification(num_labels=1)`` with its
    tokenizer, saved as safetensors."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny_model")
    vocab_size = build_tokenizer(out)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(out, safe_serialization=True)
    return out


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Raw MS MARCO-format files: corpus.tsv (pid, title, text), train/dev queries, 4-column
    train qrels, 2-column dev qrels, a neg_file for training and a dev ranking to rerank."""
    rng = random.Random(0)
    d = tmp_path_factory.mktemp("tiny_data")
    n_pass, n_train, n_dev = 48, 16, 6
    passages = {
        f"p{i}": [_sentence(rng, 2) if i % 3 else "", _sentence(rng, 12)] for i in range(n_pass)
    }
    pids = list(passages)
    train_q = {f"t{i}": _sentence(rng, 5) for i in range(n_train)}
    dev_q = {f"d{i}": _sentence(rng, 5) for i in range(n_dev)}
    train_pos = {q: pids[i] for i, q in enumerate(train_q)}
    dev_pos = {q: pids[n_train + i] for i, q in enumerate(dev_q)}
    # a learnable signal: a positive passage repeats its query's words
    for q, p in [*train_pos.items(), *dev_pos.items()]:
        text = {**train_q, **dev_q}[q]
        passages[p][1] = f"{text} {passages[p][1]}"
    files = {
        "corpus": d / "corpus.tsv",
        "train_queries": d / "train.query.txt",
        "dev_queries": d / "dev.query.txt",
        "train_qrels": d / "qrels.train.tsv",
        "dev_qrels": d / "qrels.dev.tsv",
        "neg_file": d / "train.negatives.tsv",
        "test_file": d / "dev.ranking.tsv",
    }
    files["corpus"].write_text("".join(f"{p}\t{t}\t{x}\n" for p, (t, x) in passages.items()))
    files["train_queries"].write_text("".join(f"{q}\t{t}\n" for q, t in train_q.items()))
    files["dev_queries"].write_text("".join(f"{q}\t{t}\n" for q, t in dev_q.items()))
    files["train_qrels"].write_text("".join(f"{q}\t0\t{p}\t1\n" for q, p in train_pos.items()))
    files["dev_qrels"].write_text("".join(f"{q}\t{p}\n" for q, p in dev_pos.items()))
    with open(files["neg_file"], "w") as f:
        for q, p in train_pos.items():
            negs = rng.sample([x for x in pids if x != p], 10)
            f.write(f"{q}\t{','.join(negs)}\n")
    with open(files["test_file"], "w") as f:
        for q, p in dev_pos.items():
            ranked = rng.sample([x for x in pids if x != p], 11) + [p]
            rng.shuffle(ranked)
            for r, pid in enumerate(ranked, 1):
                f.write(f"{q}\t{pid}\t{r}\t{20.0 - r:.3f}\n")
    return files


@pytest.fixture(scope="session")
def separating_model_dir(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path_factory) -> Path:
    """The tiny model trained in fp32 until its scores separate the passages (a random model
    scores every pair within 1e-4: any rounding reorders it). For precision comparisons."""
    from cross_encoder import run

    p = tiny_preprocessed
    out = tmp_path_factory.mktemp("separating_model")
    argv = [
        "--output_dir", str(out), "--model_name_or_path", str(tiny_model_dir), "--do_train",
        "--precision", "fp32", "--corpus_file", str(p / "corpus"),
        "--train_query_file", str(p / "train_query"),
        "--train_qrels", str(p / "train_qrels.txt"), "--neg_file", str(tiny_data["neg_file"]),
        "--train_group_size", "4", "--max_len", "48", "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-2", "--num_train_epochs", "6", "--save_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    assert run.main(argv) == 0
    return out


@pytest.fixture(scope="session")
def tiny_preprocessed(tmp_path_factory, tiny_model_dir, tiny_data) -> Path:
    """``cross_encoder.preprocess`` output for ``tiny_data``: corpus/, train_query/,
    dev_query/ and train_qrels.txt."""
    return preprocess_tiny(tmp_path_factory.mktemp("tiny_preprocessed"), tiny_model_dir, tiny_data)


def preprocess_tiny(out: Path, model: Path, data: dict[str, Path]) -> Path:
    """Run ``cross_encoder.preprocess`` on raw tiny files (32 tokens, titles) into ``out``."""
    from cross_encoder.preprocess import main

    rc = main(
        [
            "--tokenizer_name", str(model),
            "--max_seq_length", "32",
            "--output_dir", str(out),
            "--use_title",
            "--corpus_file", str(data["corpus"]),
            "--train_query_file", str(data["train_queries"]),
            "--dev_query_file", str(data["dev_queries"]),
            "--train_qrels", str(data["train_qrels"]),
        ]
    )  # fmt: skip
    assert rc == 0
    return out


def write_tiny_config(path: Path, data: dict[str, Path], model: Path, **overrides) -> Path:
    """A workflow config that runs every stage on tiny data in seconds."""
    config = {
        "run_name": "tiny",
        "results_dir": "results",
        "data": {"source": "files", **{k: str(data[k]) for k in DATA_KEYS}},
        "preprocess": {"max_len": 32, "use_title": True},
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


def run_snakemake(workdir: Path, configfile: Path, *args: str, check: bool = True):
    """``snakemake_cmd`` run to completion (15 min at most); asserts success unless told."""
    proc = subprocess.run(
        snakemake_cmd(workdir, configfile, *args),
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=900,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def have_snakemake() -> bool:
    return shutil.which("snakemake", path=str(BIN)) is not None


# --------------------------------------------------------------------------- story data
# Ids that the bad-input matrix (test_bad_input.py) names: train qids 100.., dev qids 916..,
# integer pids 0.. (three passages per story).


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def make_story_data(
    root: Path, n_train: int = 16, n_dev: int = 8, seed: int = 0
) -> dict[str, Path]:
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


@pytest.fixture(scope="session")
def story_data(tmp_path_factory) -> dict[str, Path]:
    return make_story_data(tmp_path_factory.mktemp("story_data"))


@pytest.fixture(scope="session")
def story_preprocessed(tmp_path_factory, story_data, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("story_preprocessed")
    return preprocess_tiny(out, tiny_model_dir, story_data)
