"""Interruptions, determinism, safe loading and shell quoting.

* kill -9 at a seeded random point of preprocess and of predict: nothing that looks complete
  is left, and a rerun writes the same bytes as an uninterrupted run;
* same seed and config -> byte-identical model and score files on CPU;
* config paths with spaces work, and one holding ``;touch ...;`` runs no command.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ANIMALS, PLACES, VERBS, snakemake_cmd, workflow_env, write_tiny_config

from cross_encoder import io, modeling, preprocess, run

SEED = int(os.environ.get("ROBUSTNESS_SEED", "20260"))
# One thread: the machines these tests run on are shared, and two spinning OpenMP threads
# on a loaded 2-core box run many times slower than one.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) -> its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def kill_when(proc: subprocess.Popen, ready, rng: random.Random, max_delay: float) -> bool:
    """Wait until ``ready()`` (the process is writing), then a seeded random delay, then
    SIGKILL. True if the kill landed before the process finished."""
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0, max_delay))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_cleans_temps_of_killed_writers(tmp_path):
    target = tmp_path / "scores.tsv"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = tmp_path / f".scores.tsv.{dead}.abc123.tmp"
    stale.write_text("half")
    live = tmp_path / f".scores.tsv.{os.getpid()}.xyz.tmp"  # a writer still running
    live.write_text("busy")
    io.write_scores(target, [("q", "p", 1.0)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "scores.tsv"]


@pytest.fixture(scope="module")
def big_data(tmp_path_factory) -> dict[str, Path]:
    """A corpus big enough (40k passages) that writing it takes a while."""
    rng = random.Random(1)
    d = tmp_path_factory.mktemp("big")
    words = ANIMALS + VERBS + PLACES + ["the", "near", "a", "by", "saw", "day"]
    with open(d / "corpus.tsv", "w") as f:
        for i in range(40_000):
            f.write(f"{i}\tT{i % 7}\t{' '.join(rng.choices(words, k=rng.randint(5, 30)))}\n")
    (d / "train.query.txt").write_text("".join(f"{q}\tthe {ANIMALS[q % 8]}\n" for q in range(8)))
    (d / "dev.query.txt").write_text("".join(f"{q}\ta {PLACES[q % 4]}\n" for q in range(8, 12)))
    (d / "qrels.train.tsv").write_text("".join(f"{q}\t0\t{q}\t1\n" for q in range(8)))
    return {
        "corpus": d / "corpus.tsv",
        "train_queries": d / "train.query.txt",
        "dev_queries": d / "dev.query.txt",
        "train_qrels": d / "qrels.train.tsv",
    }


def preprocess_argv(data, model, out) -> list[str]:
    return [
        "--tokenizer_name",
        str(model),
        "--max_seq_length",
        "32",
        "--use_title",
        "--chunk_size",
        "500",
        "--output_dir",
        str(out),
        "--corpus_file",
        str(data["corpus"]),
        "--train_query_file",
        str(data["train_queries"]),
        "--dev_query_file",
        str(data["dev_queries"]),
        "--train_qrels",
        str(data["train_qrels"]),
    ]


@pytest.fixture(scope="module")
def big_preprocessed(tmp_path_factory, big_data, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("big_tok") / "tok"
    assert preprocess.main(preprocess_argv(big_data, tiny_model_dir, out)) == 0
    return out


@pytest.mark.slow
def test_preprocess_killed_then_rerun_gives_same_bytes(
    tmp_path, big_data, big_preprocessed, tiny_model_dir
):
    out = tmp_path / "tok"
    rng = random.Random(SEED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cross_encoder.preprocess"]
        + preprocess_argv(big_data, tiny_model_dir, out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    staged = out / preprocess.STAGE / "corpus"
    killed = kill_when(proc, staged.exists, rng, max_delay=1.0)
    print("preprocess killed mid-way:", killed)
    # What looks finished is finished: each output is absent or has its final bytes.
    reference = tree_bytes(big_preprocessed)
    for name in ("corpus/data-00000-of-00001.arrow", "corpus/state.json", "train_qrels.txt"):
        if (out / name).exists():
            assert (out / name).read_bytes() == reference[name], name
    assert preprocess.main(preprocess_argv(big_data, tiny_model_dir, out)) == 0
    assert tree_bytes(out) == tree_bytes(big_preprocessed)


def predict_argv(model, tok, ranking, out) -> list[str]:
    return [
        "--model_name_or_path",
        str(model),
        "--output_dir",
        str(out.parent / "work"),
        "--do_predict",
        "--corpus_file",
        str(tok / "corpus"),
        "--test_query_file",
        str(tok / "dev_query"),
        "--test_file",
        str(ranking),
        "--prediction_topk",
        "100000",
        "--max_len",
        "48",
        "--prediction_batch_tokens",
        "512",
        "--prediction_save_path",
        str(out),
        "--report_to",
        "none",
    ]


@pytest.mark.slow
def test_predict_killed_then_rerun_gives_same_bytes(tmp_path, big_preprocessed, tiny_model_dir):
    ranking = tmp_path / "dev.ranking.tsv"
    ranking.write_text(
        "".join(f"{q}\t{p}\t{p + 1}\t{-p}\n" for q in range(8, 12) for p in range(0, 40_000, 40))
    )
    reference = tmp_path / "ref" / "scores.tsv"
    assert run.main(predict_argv(tiny_model_dir, big_preprocessed, ranking, reference)) == 0
    out = tmp_path / "killed" / "scores.tsv"
    rng = random.Random(SEED + 1)
    log = tmp_path / "predict.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cross_encoder.run"]
            + predict_argv(tiny_model_dir, big_preprocessed, ranking, out),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=ENV,
        )
        killed = kill_when(proc, lambda: "scoring" in log.read_text(), rng, max_delay=0.3)
    print("predict killed mid-way:", killed, "- scores written before the kill:", out.exists())
    # killed before the end: no scores, or (killed while exiting) the complete file
    assert not out.exists() or out.read_bytes() == reference.read_bytes()
    assert run.main(predict_argv(tiny_model_dir, big_preprocessed, ranking, out)) == 0
    assert out.read_bytes() == reference.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir() if p.name != "work") == ["scores.tsv"]


# --------------------------------------------------------------------------- determinism


def train_predict(tmp_path, name, tok, model, ranking, seed) -> Path:
    out = tmp_path / name
    argv = ["--model_name_or_path", str(model), "--output_dir", str(out / "state")]
    argv += ["--final_model_dir", str(out / "model"), "--do_train", "--do_predict"]
    argv += ["--corpus_file", str(tok / "corpus"), "--train_query_file", str(tok / "train_query")]
    argv += ["--train_qrels", str(tok / "train_qrels.txt"), "--train_group_size", "3"]
    argv += ["--per_device_train_batch_size", "2", "--learning_rate", "1e-3"]
    argv += ["--max_steps", "4", "--max_len", "48", "--seed", str(seed), "--report_to", "none"]
    argv += ["--test_query_file", str(tok / "dev_query"), "--test_file", str(ranking)]
    argv += ["--prediction_save_path", str(out / "scores.tsv"), "--dataloader_num_workers", "0"]
    assert run.main(argv) == 0
    return out


def test_same_seed_same_bytes(tmp_path, story_preprocessed, tiny_model_dir, story_data):
    dev = [line.split("\t")[0] for line in story_data["dev_queries"].read_text().splitlines()]
    ranking = tmp_path / "dev.ranking.tsv"
    ranking.write_text("".join(f"{q}\t{p}\t{p + 1}\t0\n" for q in dev for p in range(12)))
    a = train_predict(tmp_path, "a", story_preprocessed, tiny_model_dir, ranking, seed=7)
    b = train_predict(tmp_path, "b", story_preprocessed, tiny_model_dir, ranking, seed=7)
    c = train_predict(tmp_path, "c", story_preprocessed, tiny_model_dir, ranking, seed=8)
    assert (a / "scores.tsv").read_bytes() == (b / "scores.tsv").read_bytes()
    weights = "model.safetensors"
    assert (a / "model" / weights).read_bytes() == (b / "model" / weights).read_bytes()
    assert (a / "scores.tsv").read_bytes() != (c / "scores.tsv").read_bytes()


# --------------------------------------------------------------------------- safe loading


def test_no_unsafe_loading_in_the_package():
    """Weights only from safetensors, torch.load only with weights_only=True, remote code
    only when asked for."""
    src = Path(run.__file__).parent
    for path in src.glob("*.py"):
        text = path.read_text()
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path.name}: {line.strip()}"
            if "Model" in line and ".from_pretrained(" in line:
                assert "use_safetensors=True" in line or "use_safetensors=True" in text
            if "trust_remote_code=True" in line:
                raise AssertionError(f"{path.name}: hard-coded trust_remote_code=True")


def test_pickled_weights_are_refused(tmp_path, tiny_model_dir, capsys):
    """A model folder with only pytorch_model.bin (a pickle) is not loaded."""
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    bad = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, bad)
    model = AutoModelForSequenceClassification.from_pretrained(bad)
    (bad / "model.safetensors").unlink()
    torch.save(model.state_dict(), bad / "pytorch_model.bin")
    from cross_encoder.training.arguments import ModelArguments

    with pytest.raises(io.InputError, match="cannot load model"):
        modeling.load_model(ModelArguments(model_name_or_path=str(bad)))


# --------------------------------------------------------------------------- shell quoting


@pytest.mark.slow
def test_config_paths_with_spaces_and_semicolons(tmp_path, story_data, tiny_model_dir):
    marker = tmp_path / "pwned"
    data_dir = Path(f"{tmp_path}/my data/;touch {marker};")
    data_dir.mkdir(parents=True)
    data = {}
    for key, path in story_data.items():
        data[key] = data_dir / path.name
        data[key].write_bytes(path.read_bytes())
    work = tmp_path / "work dir"
    config = write_tiny_config(
        tmp_path / "c.yaml", data, tiny_model_dir, results_dir="res ults;touch pwned2;"
    )
    out = Path("res ults;touch pwned2;") / "tiny"
    targets = [
        str(out / "first_stage" / "dev.bm25.tsv"),
        str(out / "tokenized" / "train_qrels.txt"),
    ]
    proc = subprocess.run(
        snakemake_cmd(work, config, *targets),
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / targets[0]).stat().st_size > 0
    assert (work / targets[1]).stat().st_size > 0
    assert not marker.exists() and not (work / "pwned2").exists()
    assert "--trust_remote_code" not in proc.stdout
    # the flag is passed only when the config asks for it
    c = yaml.safe_load(config.read_text())
    c["train"]["trust_remote_code"] = True
    config.write_text(yaml.safe_dump(c))
    plan = subprocess.run(
        snakemake_cmd(work, config, "-n", "-p", "-F", targets[1]),
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=300,
    )
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "--trust_remote_code" in plan.stdout
