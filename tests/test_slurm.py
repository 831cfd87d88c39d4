"""The SLURM profile, proven on a real single-node SLURM.

A module fixture starts SLURM (tests/helpers/slurm_cluster.py: installs it with apt only
when missing, reuses a running cluster, stops only what it started). Snakemake
then runs through a *test variant* of ``profiles/slurm/config.yaml``, written
into tmp by :func:`write_test_profile`: partition of the test cluster, no
account, ``squeue`` status checks (without accounting ``sacct`` hangs forever),
quick status checks, no GPUs, threads and memory capped to the node.

Without root, apt or working daemons the tests skip with the reason; under CI
(``CI`` set) they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

try:  # tests/ as a package, or (pytest's default) as a plain directory on sys.path
    from cross_encoder.slurm_cluster import SlurmCluster, SlurmUnavailable, start_cluster
except ImportError:
    from helpers.slurm_cluster import SlurmCluster, SlurmUnavailable, start_cluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO_ROOT / "profiles" / "slurm" / "config.yaml"
# Resources a GPU-less test node cannot grant; dropped from every rule.
GPU_RESOURCES = ("gpu", "gpus", "nvidia_gpu", "gres", "gpu_model", "cpus_per_gpu", "tasks_per_gpu")
# Cluster-specific settings that do not exist on the test cluster.
SITE_SETTINGS = (
    "slurm-qos",
    "slurm-reservation",
    "slurm-partition-config",
    "slurm-requeue",
    "software-deployment-method",
)


# --------------------------------------------------------------------------- helpers


def write_test_profile(dest: Path, cluster: SlurmCluster, source: Path = SLURM_PROFILE) -> Path:
    """Write the test variant of the SLURM profile into ``dest``; return ``dest``.

    Loads ``profiles/slurm/config.yaml`` and overrides only what the test cluster
    needs, so the rest of the real profile (executor, set-resources, set-threads,
    runtime, ...) is what gets tested.
    """
    profile = yaml.safe_load(source.read_text())
    mem_cap = max(100, cluster.mem_mb // max(2, cluster.cpus))

    defaults = dict(profile.get("default-resources") or {})
    defaults.pop("slurm_account", None)
    defaults["slurm_partition"] = cluster.partition
    defaults["mem_mb"] = min(int(defaults.get("mem_mb", mem_cap)), mem_cap)
    profile["default-resources"] = defaults

    set_resources = {}
    for rule, resources in (profile.get("set-resources") or {}).items():
        resources = {
            k: v
            for k, v in resources.items()
            if k not in GPU_RESOURCES and k not in ("slurm_account", "slurm_partition")
        }
        if "mem_mb" in resources:
            resources["mem_mb"] = min(int(resources["mem_mb"]), mem_cap)
        # 0 also overrides a `gpu` the rule itself declares.
        resources["gpu"] = 0
        set_resources[rule] = resources
    profile["set-resources"] = set_resources

    threads = {
        rule: min(int(n), cluster.cpus) for rule, n in (profile.get("set-threads") or {}).items()
    }
    if threads:
        profile["set-threads"] = threads
    else:  # an empty mapping is an empty --set-threads, which snakemake rejects
        profile.pop("set-threads", None)
    for key in SITE_SETTINGS:
        profile.pop(key, None)
    profile.update(
        {
            "max-threads": cluster.cpus,
            "slurm-status-command": "squeue",
            "slurm-no-account": True,
            "slurm-init-seconds-before-status-checks": 1,
            "seconds-between-status-checks": 1,
            "slurm-keep-successful-logs": True,
            "latency-wait": 5,
            "retries": 0,
            "keep-going": False,
        }
    )
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def _snakemake_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.pop("SNAKEMAKE_PROFILE", None)
    # Jobs inherit this environment (sbatch --export=ALL): find the venv's tools
    # (snakemake, torchrun) first and never download models.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def run_workflow_on_slurm(
    workdir: Path,
    snakefile: Path,
    configfile: Path | None,
    targets: list[str],
    profile_dir: Path,
    timeout: float = 600,
) -> str:
    """Run snakemake through ``profile_dir`` on SLURM; return its output; fail on error.

    ``--workflow-profile`` replaces ``profiles/default`` (which would otherwise
    be picked up next to the Snakefile). On timeout snakemake is killed and its
    SLURM jobs are cancelled by the run ID it printed.
    """
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(profile_dir),
        *targets,  # before --configfile, which takes several values
    ]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_snakemake_env(),
        cwd=workdir,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake may ignore SIGTERM
        output, _ = proc.communicate()
        run_id = re.search(r"SLURM run ID: (\S+)", output)
        if run_id:
            subprocess.run(["scancel", f"--name={run_id.group(1)}"], check=False, timeout=30)
        pytest.fail(f"snakemake timed out after {timeout:.0f} s:\n{output[-6000:]}")
    (workdir / "snakemake-slurm.out").write_text(output)
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{output[-6000:]}"
    return output


def submitted_rules(output: str) -> set[str]:
    """Rules snakemake submitted as cluster jobs (``localrule ...`` ran locally)."""
    return set(re.findall(r"^rule (\w+):$", output, flags=re.MULTILINE))


def slurm_job_ids(workdir: Path, rule: str) -> set[str]:
    """SLURM job IDs of ``rule``'s jobs, from the plugin's per-job logs."""
    logdir = workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}"
    return {p.stem for p in logdir.rglob("*.log") if p.stem.isdigit()}


def assert_ran_in_slurm(workdir: Path, rules: set[str]) -> dict[str, set[str]]:
    """Every rule in ``rules`` has a SLURM job log naming it; return rule -> job IDs."""
    assert rules, "snakemake submitted no jobs"
    ids = {}
    for rule in sorted(rules):
        ids[rule] = slurm_job_ids(workdir, rule)
        assert ids[rule], f"rule {rule} left no SLURM job log: it did not run as a SLURM job"
        for job_id in ids[rule]:
            log = next((workdir / ".snakemake" / "slurm_logs").rglob(f"{job_id}.log"))
            assert re.search(rf"\b{rule}\b", log.read_text()), f"{log} does not mention {rule}"
    return ids


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running SLURM for this module; stops only the daemons it started."""
    try:
        cluster = start_cluster()
    except SlurmUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but SLURM could not be started: {e}")
        pytest.skip(f"no SLURM: {e}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm_test_profile(tmp_path: Path, slurm_cluster: SlurmCluster) -> Path:
    return write_test_profile(tmp_path / "profile", slurm_cluster)


# --------------------------------------------------------------------------- tests

TOY_SNAKEFILE = r"""
# Each job records the SLURM job it ran in (the same line the real rules print).
ENV = (
    'echo "SLURM_JOB_ID=${SLURM_JOB_ID:-none}";'
    ' echo "SLURM_JOB_PARTITION=${SLURM_JOB_PARTITION:-none}";'
    ' scontrol --oneliner show job "$SLURM_JOB_ID"'
)

rule all:
    input: "results/model.txt"

rule preprocess:
    output: "results/corpus.txt"
    log: "logs/preprocess.log"
    resources: mem_mb=300
    shell: "({ENV}; echo corpus > {output}) > {log} 2>&1"

rule retrieve_bm25:
    output: "results/run.txt"
    log: "logs/retrieve_bm25.log"
    threads: 2
    resources: mem_mb=600
    shell: "({ENV}; echo threads={threads} > {output}) > {log} 2>&1"

# Named like the real GPU rule: the profile's set-resources/set-threads apply,
# and the rule's own gpu=1 must be neutralised on the GPU-less test node.
rule train_cross_encoder:
    input: "results/corpus.txt", "results/run.txt"
    output: "results/model.txt"
    log: "logs/train_cross_encoder.log"
    resources: gpu=1
    shell: "({ENV}; cat {input} > {output}) > {log} 2>&1"
"""


def _log_values(log: Path) -> dict[str, str]:
    """``KEY=value`` lines of a toy rule's log, plus the fields of its ``scontrol`` line."""
    values = {}
    for line in log.read_text().splitlines():
        if line.startswith("JobId="):  # what SLURM granted the running job
            values.update(tok.split("=", 1) for tok in line.split() if "=" in tok)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def test_test_profile_derives_from_slurm_profile(tmp_path: Path) -> None:
    """The test variant keeps the real profile and changes only cluster specifics."""
    cluster = SlurmCluster(partition="debug", cpus=2, mem_mb=8000, reused=True)
    profile = yaml.safe_load((write_test_profile(tmp_path, cluster) / "config.yaml").read_text())
    real = yaml.safe_load(SLURM_PROFILE.read_text())

    assert profile["executor"] == real["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert profile["default-resources"]["slurm_partition"] == "debug"
    assert "slurm_account" not in profile["default-resources"]
    assert set(profile["set-resources"]) == set(real["set-resources"])
    for rule, resources in profile["set-resources"].items():
        assert resources["gpu"] == 0
        assert not set(resources) & (set(GPU_RESOURCES) - {"gpu"})
        assert resources["runtime"] == real["set-resources"][rule]["runtime"]
        assert resources["mem_mb"] <= 4000
    assert all(n <= 2 for n in (profile.get("set-threads") or {}).values())


def test_toy_workflow_runs_every_rule_as_a_slurm_job(
    tmp_path: Path, slurm_cluster: SlurmCluster, slurm_test_profile: Path
) -> None:
    """Profile + cluster work end to end: each rule is its own SLURM job with its resources."""
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(TOY_SNAKEFILE)
    workdir = tmp_path / "work"

    start = time.monotonic()
    output = run_workflow_on_slurm(
        workdir, snakefile, None, ["all"], slurm_test_profile, timeout=180
    )
    print(f"toy workflow on SLURM: {time.monotonic() - start:.1f} s")

    rules = {"preprocess", "retrieve_bm25", "train_cross_encoder"}
    assert submitted_rules(output) == rules
    ids = assert_ran_in_slurm(workdir, rules)

    seen = {}
    for rule in rules:
        values = _log_values(workdir / "logs" / f"{rule}.log")
        assert re.fullmatch(r"\d+", values["SLURM_JOB_ID"]), values
        assert values["SLURM_JOB_ID"] in ids[rule]
        assert values["SLURM_JOB_PARTITION"] == slurm_cluster.partition
        seen[rule] = values
    assert len({v["SLURM_JOB_ID"] for v in seen.values()}) == len(rules)
    # What SLURM granted: threads -> --cpus-per-task, mem_mb -> --mem.
    assert seen["retrieve_bm25"]["JobId"] == seen["retrieve_bm25"]["SLURM_JOB_ID"]
    assert seen["retrieve_bm25"]["NumCPUs"] == str(min(2, slurm_cluster.cpus))
    assert seen["retrieve_bm25"]["MinMemoryNode"] == "600M"
    assert seen["preprocess"]["NumCPUs"] == "1"
    assert seen["preprocess"]["MinMemoryNode"] == "300M"
    # The profile's set-resources reached train_cross_encoder (runtime 720 min).
    assert seen["train_cross_encoder"]["TimeLimit"] == "12:00:00"
    assert (workdir / "results" / "model.txt").exists()


def test_real_workflow_on_slurm(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The project's workflow, target ``eval`` on the tiny config, runs entirely on SLURM."""
    snakefile = REPO_ROOT / "Snakefile"
    if not snakefile.exists():
        pytest.skip("workflow not built yet")
    try:
        tiny_config = request.getfixturevalue("tiny_config")
    except pytest.FixtureLookupError:
        pytest.skip("fixture tiny_config is not defined (tests/conftest.py)")
    cluster = request.getfixturevalue("slurm_cluster")
    profile = write_test_profile(tmp_path / "profile", cluster)
    workdir = tmp_path / "work"

    output = run_workflow_on_slurm(workdir, snakefile, Path(tiny_config), ["eval"], profile)

    assert_ran_in_slurm(workdir, submitted_rules(output))


# --------------------------------------------------------------------------- time limit

# Steps of the time-limit test's training: ~70-90 s on 2 cores, longer than its 1-minute
# runtime, so that no attempt can finish it alone.
LONG_TRAINING_STEPS = 3600


def _train_job(log: Path) -> str | None:
    """The SLURM job ID on the first line of the train rule's log (this attempt's)."""
    try:
        first = log.read_text().split("\n", 1)[0]
    except OSError:
        return None
    m = re.fullmatch(r"SLURM_JOB_ID=(\d+)", first)
    return m.group(1) if m else None


def _jobs_of_run(run_id: str) -> list[tuple[str, str, str]]:
    """(job ID, state, reason) of every job of one Snakemake run, oldest first."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", f"--name={run_id}", "-o", "%i %T %r"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    rows = [tuple(line.split(maxsplit=2)) for line in out.splitlines() if line.strip()]
    return sorted(rows, key=lambda r: int(r[0]))


def test_training_longer_than_its_time_limit_finishes_after_retries(
    tmp_path: Path, tiny_data, tiny_model_dir, slurm_cluster: SlurmCluster
) -> None:
    """The train job's runtime (1 minute) is shorter than its training. Attempt 1 runs into
    the time limit: SLURM's SIGTERM, the trainer saves, KillWait, TIMEOUT. Attempt 2 resumes
    and gets SIGUSR1 as the profile's early warning delivers it (to the job steps, not the
    batch shell): it saves, exits 75, FAILED. Attempt 3 resumes and finishes. The metrics
    equal an uninterrupted local run's."""
    from conftest import run_snakemake, write_tiny_config

    config = write_tiny_config(
        tmp_path / "tiny.yaml",
        tiny_data,
        tiny_model_dir,
        train={
            "per_device_train_batch_size": 8,
            "train_group_size": 6,
            "precision": "fp32",  # no speed probe: the same arithmetic in every attempt
            "extra_args": f"--max_steps {LONG_TRAINING_STEPS}",
            "selection": {"eval_steps": 1000},
        },
        rerank={"prediction_topk": 10, "precision": "fp32", "quantize": "none"},
    )
    metrics = "results/tiny/eval/dev.metrics.json"
    work, reference = tmp_path / "work", tmp_path / "reference"
    out = work / "results" / "tiny"
    run_snakemake(work, config, metrics, "--omit-from", "train_cross_encoder")  # the inputs
    shutil.copytree(work, reference, symlinks=True)
    run_snakemake(reference, config, metrics)  # uninterrupted, locally (threads as on SLURM)

    profile_dir = write_test_profile(tmp_path / "profile", slurm_cluster)
    profile = yaml.safe_load((profile_dir / "config.yaml").read_text())
    real = yaml.safe_load(SLURM_PROFILE.read_text())
    assert "--signal=USR1@" in real["set-resources"]["train_cross_encoder"]["slurm_extra"]
    train = profile["set-resources"]["train_cross_encoder"]
    train["runtime"] = 1
    # SLURM would send the profile's warning (600 s ahead) at once to a 1-minute job; the test
    # sends the same signal the same way (scancel --signal: every job step, no batch shell)
    # once attempt 2 trains
    train.pop("slurm_extra")
    profile.update({"retries": 4, "keep-going": False})
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))

    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"),
        "--directory", str(work), "--workflow-profile", str(profile_dir),
        "results/tiny/model", "--configfile", str(config),
    ]  # fmt: skip
    log = out / "logs" / "train_cross_encoder.log"
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_snakemake_env(),
        cwd=work,
        start_new_session=True,
    )
    reader = _OutputReader(proc)
    start = time.monotonic()
    jobs_seen: list[str] = []
    signalled = None
    try:
        while proc.poll() is None:
            assert time.monotonic() - start < 600, reader.text()[-4000:]
            job = _train_job(log)
            if job and job not in jobs_seen:
                jobs_seen.append(job)
            if signalled is None and len(jobs_seen) == 2 and job == jobs_seen[1]:
                text = log.read_text(errors="replace")
                if "resuming from" in text and "'loss'" in text.split("resuming from", 1)[1]:
                    subprocess.run(["scancel", "--signal=USR1", job], check=True, timeout=30)
                    signalled = job
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        output = reader.text()
        run_id = re.search(r"SLURM run ID: (\S+)", output)
        if proc.returncode != 0 and run_id:
            subprocess.run(["scancel", f"--name={run_id.group(1)}"], check=False, timeout=30)
    print(f"train on SLURM with retries: {time.monotonic() - start:.1f} s")
    (work / "snakemake-slurm.out").write_text(output)
    assert proc.returncode == 0, output[-6000:]
    assert run_id, output[-3000:]
    jobs = _jobs_of_run(run_id.group(1))
    print("attempts:", jobs)
    states = [state for _, state, _ in jobs]
    # attempt 1: the time limit; attempt 2: the warning signal; the last one finishes
    assert states[0] == "TIMEOUT", jobs
    assert jobs[1][0] == signalled and states[1] == "FAILED", (jobs, signalled)
    assert states[-1] == "COMPLETED" and len(jobs) >= 3, jobs
    assert all(s in ("TIMEOUT", "FAILED") for s in states[1:-1]), jobs
    assert "resuming from" in log.read_text()
    assert (out / "model").is_dir()

    run_snakemake(work, config, metrics)  # reranking and metrics, locally
    want = json.loads((reference / metrics).read_text())
    got = json.loads((work / metrics).read_text())
    assert got["runs"].keys() == want["runs"].keys()
    for run, values in want["runs"].items():
        assert got["runs"][run] == pytest.approx(values, abs=1e-6), run


class _OutputReader:
    """Collects a process's output on a thread (its pipe must not fill up while we poll)."""

    def __init__(self, proc: subprocess.Popen):
        import threading

        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            self._lines.append(line)

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "".join(self._lines)
