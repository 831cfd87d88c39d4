"""Real multi-process runs on CPU: ``torchrun --nproc_per_node 2 -m cross_encoder.run`` with
DeepSpeed ZeRO-2 (gloo, torch Adam, no compiled ops), sharded predict, and resuming a run
killed with SIGKILL."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cross_encoder

pytest.importorskip("deepspeed")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ZERO2 = REPO / "config" / "deepspeed" / "zero2.json"
SLOW_RUN = Path(__file__).parents[1] / "helpers" / "slow_run.py"
SRC = Path(cross_encoder.__file__).resolve().parents[1]
# 16 queries / (2 ranks x 2 groups) = 4 steps an epoch, 6 epochs; checkpoints every 3
# steps, so checkpoint-6 is in the middle of epoch 1.
TRAIN_STEPS, SAVE_STEPS, KILL_AFTER = 24, 3, 6


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(nproc: int, *target: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "1", "--nproc_per_node", str(nproc),
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        *target,
    ]  # fmt: skip


def predict_args(data: dict, pre: Path, scores: Path) -> list[str]:
    return [
        "--do_predict",
        "--corpus_file", str(pre / "corpus"),
        "--test_query_file", str(pre / "dev_query"),
        "--test_file", str(data["test_file"]),
        "--prediction_save_path", str(scores),
        "--max_len", "48",
        "--report_to", "none",
    ]  # fmt: skip


def train_args(model: Path, data: dict, pre: Path, out: Path) -> list[str]:
    return [
        "--output_dir", str(out),
        "--model_name_or_path", str(model),
        "--do_train",
        "--deepspeed", str(ZERO2),
        "--corpus_file", str(pre / "corpus"),
        "--train_query_file", str(pre / "train_query"),
        "--train_qrels", str(pre / "train_qrels.txt"),
        "--neg_file", str(data["neg_file"]),
        "--train_group_size", "4",
        "--per_device_train_batch_size", "2",
        "--learning_rate", "1e-2",
        "--num_train_epochs", "6",
        "--logging_steps", "4",
        "--save_steps", str(SAVE_STEPS),
        "--seed", "7",
        "--disable_tqdm", "true",
        *predict_args(data, pre, out / "scores.txt"),
    ]  # fmt: skip


def check(cmd: list[str], timeout: float = 180) -> str:
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    return log


def read_scores(path: Path) -> tuple[list[str], list[float]]:
    pairs, scores = [], []
    for line in path.read_text().splitlines():
        q, p, s = line.split("\t")
        pairs.append(f"{q}\t{p}")
        scores.append(float(s))
    return pairs, scores


@pytest.fixture(scope="module")
def zero2_run(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path_factory):
    """An uninterrupted 2-process ZeRO-2 training + predict run."""
    out = tmp_path_factory.mktemp("zero2") / "run"
    start = time.perf_counter()
    log = check(
        torchrun(2, "-m", "cross_encoder.run")
        + train_args(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    )
    print(f"2-process ZeRO-2 train+predict wall time: {time.perf_counter() - start:.1f} s")
    return out, log


def test_zero2_training_learns_and_saves_safetensors(zero2_run, tiny_data):
    from transformers import AutoModelForSequenceClassification

    out, log = zero2_run
    logged = [ast.literal_eval(line) for line in log.splitlines() if line.startswith("{'loss'")]
    losses = [float(d["loss"]) for d in logged]
    assert len(losses) == TRAIN_STEPS // 4, log[-3000:]  # rank 0 alone logs
    assert losses[-1] < losses[0] - 0.2, losses
    assert (out / "model.safetensors").is_file()
    assert not list(out.glob("pytorch_model*.bin"))
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 1
    # ZeRO-2 checkpoints: partitioned optimizer states of both ranks, RNG state per rank
    ckpt = out / f"checkpoint-{TRAIN_STEPS}"
    assert (ckpt / f"global_step{TRAIN_STEPS}").is_dir()
    assert {p.name for p in ckpt.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    pairs, scores = read_scores(out / "scores.txt")
    expected = [
        "\t".join(line.split("\t")[:2]) for line in tiny_data["test_file"].read_text().splitlines()
    ]
    assert pairs == expected  # one file, test_file order, every pair once


def test_two_process_predict_equals_one_process(zero2_run, tiny_data, tiny_preprocessed, tmp_path):
    from cross_encoder import run

    model = zero2_run[0]
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    # fp32: the sharding is what is tested; in bf16 (auto on AMX) scores moved by up to 1e-3
    # between the one- and two-process batches once the last layer ran for [CLS] only
    common = ["--model_name_or_path", str(model), "--output_dir", str(tmp_path / "o"),
              "--precision", "fp32"]  # fmt: skip
    assert run.main(common + predict_args(tiny_data, tiny_preprocessed, one)) == 0
    log = check(
        torchrun(2, "-m", "cross_encoder.run")
        + common
        + predict_args(tiny_data, tiny_preprocessed, two)
        + ["--prediction_chunk_pairs", "10"]  # 2 ranks, queries split across chunk borders
    )
    # both ranks scored a share (a process group was initialised), rank 0 alone wrote
    assert "predict (rank 0)" in log and "predict (rank 1)" in log
    assert log.count("wrote 72 scores") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.txt", "two.txt"]
    pairs1, s1 = read_scores(one)
    pairs2, s2 = read_scores(two)
    assert [line.split("\t")[:2] for line in one.read_text().splitlines()] == [
        line.split("\t")[:2] for line in two.read_text().splitlines()
    ]
    assert pairs1 == pairs2
    assert max(abs(a - b) for a, b in zip(s1, s2, strict=True)) < 1e-4


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and its workers (they run in sessions of their own), by pid."""
    import psutil

    parent = psutil.Process(proc.pid)
    procs = [parent, *parent.children(recursive=True)]
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(procs, timeout=30)


@contextlib.contextmanager
def slow_run_until(args: list[str], marker: Path, log_path: Path):
    """A 2-rank torchrun of the slow helper (a pause per step), yielded once ``marker`` (a
    checkpoint file) exists; killed on leaving if it is still running."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            torchrun(2, str(SLOW_RUN), "--pause", "0.5") + args,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 150
            while not marker.exists():
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint in time"
                time.sleep(0.1)
            yield proc
        finally:
            if proc.poll() is None:
                kill_tree(proc)


def test_resume_after_kill_matches_uninterrupted_run(
    zero2_run, tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path
):
    out = tmp_path / "run"
    args = train_args(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    marker = out / f"checkpoint-{KILL_AFTER}" / "trainer_state.json"
    log_path = tmp_path / "killed.log"
    with slow_run_until(args, marker, log_path):
        pass  # killed here, mid-training
    assert not (out / "scores.txt").exists()
    assert not (out / f"checkpoint-{TRAIN_STEPS}").exists()  # killed mid-training

    log = check(torchrun(2, "-m", "cross_encoder.run") + args)
    assert "resuming from" in log
    resumed = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert resumed[-1] == TRAIN_STEPS
    pairs_a, a = read_scores(zero2_run[0] / "scores.txt")
    pairs_b, b = read_scores(out / "scores.txt")
    assert pairs_a == pairs_b
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5


# --------------------------------------------------------------------------- optimizer groups

HEAD_LR, BASE_LR, DECAY, WD = 1e-3, 1e-4, 0.5, 0.01


def expected_groups(model_dir: Path) -> dict[str, list[float]]:
    """What CrossEncoderTrainer.create_optimizer must give each parameter of the tiny BERT
    (2 layers), written out by hand: the new head (classifier) at the head's rate, layer i of
    2 at DECAY ** (1 - i), embeddings DECAY ** 2, the pooler 1; no decay on biases and
    LayerNorm."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    out = {}
    for n, _ in model.named_parameters():
        if n.startswith("classifier."):
            lr = HEAD_LR
        elif ".layer.0." in n:
            lr = BASE_LR * DECAY
        elif ".layer.1." in n or ".pooler." in n:
            lr = BASE_LR
        else:
            assert ".embeddings." in n, n
            lr = BASE_LR * DECAY**2
        wd = 0.0 if n.endswith(".bias") or "LayerNorm" in n else WD
        out[n] = [lr, wd]
    return out


@pytest.mark.parametrize("deepspeed", [True, False], ids=["zero2", "ddp"])
def test_optimizer_groups_reach_the_engine(
    deepspeed, tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path
):
    """The head's learning rate, layer-wise decay and the no-decay group are what the optimizer
    of the running engine holds: DeepSpeed ZeRO-2 (config/deepspeed/zero2.json) and plain DDP,
    2 processes each, read back on every rank."""
    out = tmp_path / "run"
    args = train_args(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    args = args[: args.index("--do_predict")]  # training only
    if not deepspeed:
        i = args.index("--deepspeed")
        del args[i : i + 2]
    args += [
        "--max_steps", "1",
        "--save_strategy", "no",
        "--learning_rate", str(BASE_LR),
        "--head_learning_rate", str(HEAD_LR),
        "--layerwise_lr_decay", str(DECAY),
        "--weight_decay", str(WD),
        "--warmup_steps", "1",
    ]  # fmt: skip
    check(torchrun(2, str(Path(__file__).parents[1] / "helpers" / "optimizer_groups.py"), *args))
    want = expected_groups(tiny_model_dir)
    for rank in (0, 1):
        got = json.loads((out / f"groups.{rank}.json").read_text())
        if deepspeed:
            assert got["optimizer"] == "DeepSpeedZeroOptimizer", got["optimizer"]
        else:
            assert "AdamW" in got["optimizer"], got["optimizer"]
        assert set(got["groups"]) == set(want)
        for name, (lr, wd) in want.items():
            assert got["groups"][name] == pytest.approx([lr, wd], rel=1e-6), name


def test_signal_to_one_rank_checkpoints_every_rank_then_the_rerun_resumes(
    zero2_run, tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path
):
    """SIGUSR1 reaches rank 1 alone (as when a launcher forwards it to one process): both
    ranks save the same step (ZeRO-2 shards and both RNG states) and stop; the rerun resumes
    from that checkpoint to the uninterrupted run's scores."""
    import signal

    import psutil

    out = tmp_path / "run"
    args = train_args(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    marker = out / f"checkpoint-{SAVE_STEPS}" / "trainer_state.json"
    log_path = tmp_path / "stopped.log"
    with slow_run_until(args, marker, log_path) as proc:
        (rank1,) = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if p.environ().get("RANK") == "1"
        ]
        rank1.send_signal(signal.SIGUSR1)
        proc.wait(timeout=150)
    text = log_path.read_text()
    assert proc.returncode != 0, text[-3000:]
    assert "received SIGUSR1" in text and "stopped on another rank's signal" in text, text
    assert text.count("run the same command again") == 2, text
    steps = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    last = out / f"checkpoint-{steps[-1]}"
    assert SAVE_STEPS < steps[-1] < TRAIN_STEPS, steps
    assert (last / f"global_step{steps[-1]}").is_dir()
    assert {p.name for p in last.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    assert not (out / "scores.txt").exists()

    log = check(torchrun(2, "-m", "cross_encoder.run") + args)
    assert f"resuming from {last}" in log
    pairs_a, a = read_scores(zero2_run[0] / "scores.txt")
    pairs_b, b = read_scores(out / "scores.txt")
    assert pairs_a == pairs_b
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5
