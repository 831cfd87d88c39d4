"""The SLURM profile and the GPU recipe agree: ``snakemake --workflow-profile profiles/slurm
--configfile config/msmarco.yaml`` submits its GPU jobs with as many GPUs as torchrun starts
ranks, and the ranks share the CPU cores the job gets.

No cluster needed: the real executor plugin renders its ``sbatch`` call, which a stand-in
``sbatch`` on PATH records and refuses (so Snakemake stops at once); ``sinfo`` names one
partition. The rule's shell command comes from the same run (``printshellcmds``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("snakemake_executor_plugin_slurm")

REPO = Path(__file__).resolve().parents[1]
MSMARCO = REPO / "config" / "msmarco.yaml"
FAKE_SLURM = """#!/bin/bash
echo "$(basename "$0") $*" >> "$FAKE_SLURM_LOG"
case $(basename "$0") in
  sbatch) cat > /dev/null; echo "sbatch: error: refused by the test" >&2; exit 1 ;;
  sinfo) printf 'PARTITION\\ngpu*\\n' ;;
  *) exit 1 ;;
esac
"""


def make_workdir(tmp: Path, config: dict) -> Path:
    """The config's input files (placeholders), and the outputs of the jobs before training
    and reranking, newer than those, so that only the job asked for is submitted."""
    for key in ("corpus", "train_queries", "dev_queries", "train_qrels", "dev_qrels"):
        path = tmp / config["data"][key]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    for path in [config["first_stage"]["neg_file"], *config["first_stage"]["rankings"].values()]:
        (tmp / path).write_text("x\n")
    out = tmp / "results" / config["run_name"]
    for name in ("tokenized/corpus", "tokenized/train_query", "tokenized/dev_query", "model"):
        (out / name).mkdir(parents=True)
        (out / name / "x").write_text("x\n")
    (out / "tokenized" / "train_qrels.txt").write_text("x\n")
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "fake").write_text(FAKE_SLURM)
    (bin_dir / "fake").chmod(0o755)
    for tool in ("sbatch", "sinfo", "sacct", "squeue", "scontrol"):
        (bin_dir / tool).symlink_to("fake")
    return out


def submit(tmp: Path, target: str) -> tuple[list[str], str]:
    """(the recorded sbatch arguments, the rule's shell command) for one target."""
    log = tmp / "slurm.log"
    log.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{tmp / 'fakebin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
    env["PATH"] += os.environ.get("PATH", "")
    env.update(FAKE_SLURM_LOG=str(log), HF_HUB_OFFLINE="1")
    cmd = [
        sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm",
        "--configfile", str(MSMARCO), "--directory", str(tmp), "--retries", "0",
        "--slurm-no-account", "--latency-wait", "0",
        "--slurm-init-seconds-before-status-checks", "1", target,
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    output = r.stdout + r.stderr
    sbatch = [line for line in log.read_text().splitlines() if line.startswith("sbatch ")]
    assert len(sbatch) == 1, output[-3000:]
    args = shlex.split(sbatch[0].split(" --wrap", 1)[0])[1:]
    shell = re.search(r"Shell command: ((?:exec > \S+ 2>&1; |\()echo SLURM_JOB_ID.*)", output)
    assert shell, output[-3000:]
    return args, shell.group(1)


def flag(args: list[str], name: str) -> int:
    values = [int(a.split("=", 1)[1]) for a in args if a.startswith(name + "=")]
    assert len(values) == 1, (name, args)
    return values[0]


def omp_threads(shell: str) -> int:
    """What OMP_NUM_THREADS=... in the rule's command evaluates to in bash."""
    m = re.search(r"OMP_NUM_THREADS=(\$\(\([^)]*\)\)|\S+)", shell)
    assert m, shell
    return int(
        subprocess.run(
            ["bash", "-c", f"echo {m.group(1)}"], capture_output=True, text=True, check=True
        ).stdout
    )


@pytest.mark.parametrize(
    ("target", "section"),
    [("model", "train"), ("rerank/dev.scores.tsv", "rerank")],
    ids=["train_cross_encoder", "rerank"],
)
def test_msmarco_jobs_get_a_gpu_per_rank(target, section, tmp_path):
    config = yaml.safe_load(MSMARCO.read_text())
    nproc = config[section]["nproc"]
    assert config["train"]["use_gpu"] and nproc > 1
    out = make_workdir(tmp_path, config)
    args, shell = submit(tmp_path, str((out / target).relative_to(tmp_path)))

    # as many GPUs as torchrun starts ranks
    assert flag(args, "--gpus") == nproc
    assert f"--nproc_per_node {nproc} " in shell
    # the CPUs SLURM grants are shared by the ranks: none oversubscribed, none idle
    cpus = flag(args, "--cpus-per-task")
    per_rank = omp_threads(shell)
    assert per_rank >= 1 and per_rank * nproc == cpus, (per_rank, nproc, cpus)
    assert not any(a.startswith("--cpus-per-gpu") for a in args)
    # and a job without a usable GPU stops instead of running on the CPU
    assert " --require_gpu" in shell


def test_training_job_asks_for_an_early_warning_that_reaches_the_trainer(tmp_path):
    """SIGUSR1 before the time limit (not to the batch shell only: `B:` ends the plugin's
    batch shell), the launcher exec'd so that the trainer is the rule's process, and retries
    for the attempts a training longer than its runtime needs."""
    config = yaml.safe_load(MSMARCO.read_text())
    out = make_workdir(tmp_path, config)
    args, shell = submit(tmp_path, str((out / "model").relative_to(tmp_path)))
    (warning,) = [a for a in args if a.startswith("--signal")]
    lead = re.fullmatch(r"--signal=USR1@(\d+)", warning)
    assert lead and int(lead.group(1)) >= 60, warning  # a step and a checkpoint fit
    assert shell.startswith("exec > ") and " exec torchrun " in shell, shell
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["retries"] >= 2


def test_omp_threads_never_zero_when_capped_below_nproc(tmp_path):
    """Locally Snakemake caps threads at --cores: 8 ranks on 2 cores still get 1 thread each."""
    shell = "OMP_NUM_THREADS=$(( 2 > 8 ? 2 / 8 : 1 )) torchrun"
    assert omp_threads(shell) == 1


def test_gpu_jobs_get_the_cuda_environment():
    """--sdm conda with train.use_gpu builds envs/cross_encoder_gpu.yaml: torch from PyPI (the
    CUDA build on Linux), not the CPU index, DeepSpeed pinned; the CPU env stays CPU-only."""
    pins = {}
    for name in ("cross_encoder.yaml", "cross_encoder_gpu.yaml"):
        env = yaml.safe_load((REPO / "envs" / name).read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        pins[name] = pip
    gpu, cpu = pins["cross_encoder_gpu.yaml"], pins["cross_encoder.yaml"]
    assert "torch==2.13.0" in gpu and "deepspeed==0.19.8" in gpu
    assert not any("whl/cpu" in p for p in gpu)
    assert any("whl/cpu" in p for p in cpu)
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert '"cross_encoder_gpu.yaml" if TRAIN["use_gpu"] else "cross_encoder.yaml"' in common
