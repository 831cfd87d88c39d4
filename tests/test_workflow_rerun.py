"""The workflow as a user runs it survives kill -9: the same command again finishes, with no
--unlock and no cleanup, and its metrics equal an uninterrupted run's."""

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import run_snakemake as smk
from conftest import snakemake_cmd, workflow_env, write_tiny_config

pytestmark = pytest.mark.slow


def test_sigkill_while_training_then_the_same_command_finishes(tmp_path, tiny_data, tiny_model_dir):
    config = write_tiny_config(
        tmp_path / "tiny.yaml",
        tiny_data,
        tiny_model_dir,
        train={"save_steps": 10, "extra_args": "--max_steps 40"},
    )
    smk(tmp_path / "reference", config, "eval")
    expected = json.loads(
        (tmp_path / "reference" / "results" / "tiny" / "eval" / "dev.metrics.json").read_text()
    )

    work = tmp_path / "work"
    out = work / "results" / "tiny"
    proc = subprocess.Popen(
        snakemake_cmd(work, config, "eval"),
        env=workflow_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches every child
    )
    deadline = time.monotonic() + 600
    try:
        while not list((out / "train_state").glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, "the run ended before a checkpoint was written"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "model").exists(), "killed after training had finished"
    assert list((work / ".snakemake" / "locks").iterdir()), "a SIGKILL leaves the lock"

    again = smk(work, config, "eval")  # the same command: no --unlock, no cleanup
    assert "Removed the lock of an interrupted run" in again.stderr
    assert "resuming from" in (out / "logs" / "train_cross_encoder.log").read_text()
    got = json.loads((out / "eval" / "dev.metrics.json").read_text())
    assert got["runs"].keys() == expected["runs"].keys()
    for run, values in expected["runs"].items():
        assert got["runs"][run] == pytest.approx(values, abs=1e-6), run


def test_another_tokenizer_re_tokenizes(tmp_path, tiny_data, tiny_model_dir):
    """preprocess reruns when train.model (preprocess.tokenizer null) names another folder,
    and when the tokenizer in the same folder is replaced; not when nothing changed."""
    import shutil

    from conftest import build_tokenizer

    model_a = shutil.copytree(tiny_model_dir, tmp_path / "model_a")
    model_b = shutil.copytree(tiny_model_dir, tmp_path / "model_b")
    config_a = write_tiny_config(tmp_path / "a.yaml", tiny_data, model_a)
    config_b = write_tiny_config(tmp_path / "b.yaml", tiny_data, model_b)
    work = tmp_path / "work"
    target = "results/tiny/tokenized/train_qrels.txt"
    smk(work, config_a, target)
    record = work / "results" / "tiny" / "tokenized" / "corpus" / "tokenizer_identity.json"
    assert json.loads(record.read_text())["name_or_path"] == str(model_a)

    def plan(config):
        proc = smk(work, config, target, "--dry-run")
        return proc.stdout + proc.stderr

    assert "Nothing to be done" in plan(config_a)
    assert "rule preprocess" in plan(config_b)
    build_tokenizer(model_a, shuffle_seed=1)  # another tokenizer, same folder
    assert "rule preprocess" in plan(config_a)
