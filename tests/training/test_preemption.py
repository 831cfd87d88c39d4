"""A time limit or preemption (SIGTERM, or SLURM's early SIGUSR1) during training: a complete
checkpoint at the next step boundary, exit status 75, and the next run resumes from it to
the same model as an uninterrupted run (cross_encoder.training.preemption)."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_run import train_argv

from cross_encoder import run
from cross_encoder.training import trainer
from cross_encoder.training.preemption import EXIT_PREEMPTED

SLOW_RUN = Path(__file__).parents[1] / "helpers" / "slow_run.py"

# 4 epochs of the tiny data: 16 steps, a checkpoint every 5 (the regular schedule stays)
FLAGS = ["--num_train_epochs", "4", "--save_strategy", "steps", "--save_steps", "5"]


def _argv(tiny_model_dir, tiny_data, tiny_preprocessed, out):
    return [*train_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out), *FLAGS]


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "out"
    assert run.main(_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out)) == 0
    return load_file(out / "model.safetensors")


def _same_model(out, expected):
    got = load_file(out / "model.safetensors")
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM], ids=["USR1", "TERM"])
def test_signal_saves_at_the_next_step_then_the_rerun_resumes_to_the_same_model(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, monkeypatch, caplog, uninterrupted, sig
):
    real = trainer.grouped_softmax_loss
    calls = []

    def signal_during_step_7(logits, group_size, temperature=None):
        calls.append(1)
        if len(calls) == 7:
            os.kill(os.getpid(), sig)  # arrives mid-step: step 7 finishes first
        return real(logits, group_size, temperature)

    out = tmp_path / "out"
    argv = _argv(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    before = signal.getsignal(sig)
    with monkeypatch.context() as m:
        m.setattr(trainer, "grouped_softmax_loss", signal_during_step_7)
        assert run.main(argv) == EXIT_PREEMPTED
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-5", "checkpoint-7"]
    assert (out / "checkpoint-7" / "rng_state.pth").is_file()
    assert not (out / "model.safetensors").exists()  # no final model from a stopped run
    assert signal.getsignal(sig) is before  # handlers are put back

    caplog.clear()
    caplog.set_level(logging.INFO)
    assert run.main(argv) == 0
    assert "resuming from" in caplog.text and "checkpoint-7" in caplog.text
    _same_model(out, uninterrupted)


@pytest.mark.slow
def test_sigterm_to_the_cli_mid_training_leaves_a_checkpoint_the_next_run_resumes(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, uninterrupted
):
    """SIGTERM to ``python -m cross_encoder.run`` as SLURM sends it at the time limit."""
    out = tmp_path / "out"
    argv = _argv(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    # slow steps (a pause after each, changing no numbers) leave time to signal mid-training
    cmd = [sys.executable, str(SLOW_RUN), "--pause", "0.3", *argv]
    # HF prints the logged losses to stdout (unbuffered: seen as they come), the logging
    # goes to stderr: read both
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # wait for the second logged loss: training is under way
        seen.append(line)
        if sum("'loss'" in x for x in seen) >= 2:
            break
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=300)
    text = "".join(seen) + rest
    assert proc.returncode == EXIT_PREEMPTED, text[-3000:]
    assert "received SIGTERM" in text and "run the same command again" in text
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, text[-3000:]
    last = checkpoints[-1]
    assert (last / "trainer_state.json").is_file() and (last / "model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()

    again = subprocess.run(
        [sys.executable, "-m", "cross_encoder.run", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {last}" in again.stderr
    _same_model(out, uninterrupted)
