"""Snakemake's lock with an owner record: a dead owner's lock on this host is removed, a live
one's, another host's and an ownerless one are kept (cross_encoder.workflow.stale_locks).

The e2e tests run the real workflow and emulate a second login node sharing the results
folder with a PID+UTS namespace (``unshare --pid --fork --mount-proc --uts``, another
hostname): it sees the same files but not the first host's processes. They need root."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import snakemake_cmd, workflow_env, write_tiny_config

from cross_encoder.workflow import stale_locks

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


def _lock_files(locks):
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "0.input.lock").write_text("a\n")
    (locks / "0.output.lock").write_text("b\n")
    return ["0.input.lock", "0.output.lock"]


def _dead_pid():
    """(pid, start ticks) of a process that has exited and been reaped."""
    proc = subprocess.Popen(["sleep", "30"])
    _, ticks = stale_locks._stat(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, ticks


def _record(locks, names, **changes):
    path = stale_locks.write_owner(locks, names)
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def test_own_live_lock_is_kept(tmp_path):
    names = _lock_files(tmp_path)
    _record(tmp_path, names)  # this very process: alive
    assert stale_locks.remove_stale_locks(tmp_path) == []
    assert stale_locks._lock_files(tmp_path) == names
    line = stale_locks.describe_holders(tmp_path)
    assert f"pid {os.getpid()}" in line and "still running" in line


def test_dead_owner_on_this_host_is_removed(tmp_path):
    names = _lock_files(tmp_path)
    (tmp_path / "1.output.lock").write_text("c\n")  # another run's, unclaimed
    pid, ticks = _dead_pid()
    _record(tmp_path, names, pid=pid, start_ticks=ticks)
    assert "gone: a run that is not --touch removes" in stale_locks.describe_holders(tmp_path)
    removed = stale_locks.remove_stale_locks(tmp_path)
    assert [o.pid for o in removed] == [pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.output.lock"]


def test_a_reused_pid_is_a_dead_owner(tmp_path):
    names = _lock_files(tmp_path)
    me = stale_locks.this_process()
    _record(tmp_path, names, start_ticks=me.start_ticks - 1)  # same pid, started earlier
    assert len(stale_locks.remove_stale_locks(tmp_path)) == 1
    assert stale_locks._lock_files(tmp_path) == []


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"host": "login2"}, "on host login2"),
        ({"boot_id": "0000"}, "an earlier boot or another machine"),
        ({"pid_ns": "pid:[1]"}, "an earlier boot or another machine"),
    ],
)
def test_an_owner_this_machine_cannot_check_is_kept(tmp_path, changes, words):
    names = _lock_files(tmp_path)
    pid, ticks = _dead_pid()  # dead here, but the record says elsewhere
    _record(tmp_path, names, pid=pid, start_ticks=ticks, since=0.0, **changes)
    assert stale_locks.remove_stale_locks(tmp_path) == []
    assert stale_locks._lock_files(tmp_path) == names
    line = stale_locks.describe_holders(tmp_path)
    assert f"pid {pid}" in line and words in line
    assert "since 1970-01-01 00:00:00 UTC" in line and "--unlock" in line


def test_a_lock_without_owner_record_is_kept(tmp_path):
    names = _lock_files(tmp_path)
    (tmp_path / "owner-1-x.json").write_text("{not json")  # unreadable: claims nothing
    assert stale_locks.remove_stale_locks(tmp_path) == []
    assert stale_locks._lock_files(tmp_path) == names
    line = stale_locks.describe_holders(tmp_path)
    assert "0.input.lock, 0.output.lock with no owner record" in line and "--unlock" in line


def test_no_lock_folder_is_fine(tmp_path):
    assert stale_locks.remove_stale_locks(tmp_path / "none") == []
    assert stale_locks.describe_holders(tmp_path / "none") == ""


# --- the real workflow, a second host emulated with namespaces ---------------------------

needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare (PID+UTS namespaces)",
)
# the second host: other pids, hostname login2, the same files
OTHER = ["unshare", "--pid", "--fork", "--mount-proc", "--uts"]
OTHER += ["sh", "-c", 'hostname login2 && exec "$@"', "sh"]
TARGET = "results/tiny/tokenized/train_qrels.txt"  # one short job: preprocess


@pytest.fixture
def work(tmp_path, tiny_data, tiny_model_dir):
    config = write_tiny_config(tmp_path / "tiny.yaml", tiny_data, tiny_model_dir)
    return tmp_path / "work", config


def _start(workdir, config, prefix=()):
    """A run of ``snakemake eval`` in its own process group, returned once it holds the
    lock (its owner record exists)."""
    proc = subprocess.Popen(
        [*prefix, *snakemake_cmd(workdir, config, "eval")],
        env=workflow_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    locks = workdir / ".snakemake" / "locks"
    deadline = time.monotonic() + 120
    while not list(locks.glob("owner-*.json")):
        assert proc.poll() is None, "the run ended before it locked"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def _kill(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _run(workdir, config, *args, prefix=()):
    return subprocess.run(
        [*prefix, *snakemake_cmd(workdir, config, *args)],
        env=workflow_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _snapshot(workdir):
    locks = workdir / ".snakemake" / "locks"
    return {p.name: p.read_text() for p in sorted(locks.iterdir())}


@pytest.mark.slow
@needs_namespaces
def test_live_run_keeps_its_lock_against_another_host(work):
    workdir, config = work
    proc = _start(workdir, config)
    try:
        os.killpg(proc.pid, signal.SIGSTOP)  # alive but silent, as on a busy login node
        before = _snapshot(workdir)

        dry = _run(workdir, config, "-n", "eval", prefix=OTHER)
        assert dry.returncode == 0, dry.stderr[-2000:]
        assert "Removed the lock" not in dry.stderr
        assert _snapshot(workdir) == before

        real = _run(workdir, config, "eval", prefix=OTHER)
        assert real.returncode != 0
        assert "Directory cannot be locked" in real.stderr
        held = [line for line in real.stderr.splitlines() if "is held by" in line]
        assert len(held) == 1, real.stderr[-2000:]
        assert f"snakemake pid {proc.pid} on host {os.uname().nodename}" in held[0]
        assert "another machine" in held[0] and "--unlock" in held[0]
        assert "localrule" not in real.stderr and "rule preprocess" not in real.stderr
        assert _snapshot(workdir) == before  # no job started, nothing locked
    finally:
        _kill(proc)


@pytest.mark.slow
@needs_namespaces
@pytest.mark.parametrize("wrapper", [["timeout", "100"], ["/usr/bin/time"]])
def test_dead_owner_on_this_host_is_removed_by_a_wrapped_run(work, wrapper):
    workdir, config = work
    _kill(_start(workdir, config))
    again = _run(workdir, config, TARGET, prefix=wrapper)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Removed the lock of an interrupted run" in again.stderr
    assert (workdir / TARGET).exists()
    assert not (workdir / ".snakemake" / "locks").exists()  # released on exit


@pytest.mark.slow
def test_modes_that_take_no_lock_leave_a_dead_owners_lock(work):
    workdir, config = work
    _kill(_start(workdir, config))
    before = _snapshot(workdir)
    for mode in (["-n"], ["--lint"], ["--report", "r.html"]):
        proc = _run(workdir, config, *mode, TARGET)
        assert "Removed the lock" not in proc.stderr, mode
        assert _snapshot(workdir) == before, mode
    touch = _run(workdir, config, "--touch", TARGET)  # takes the lock, but removes nothing
    assert "Directory cannot be locked" in touch.stderr  # the dead lock covers TARGET
    assert _snapshot(workdir) == before
    assert "gone: a run that is not --touch removes this lock" in touch.stderr
    assert not (workdir / TARGET).exists()


@pytest.mark.slow
@needs_namespaces
def test_dead_owner_on_another_host_is_kept_and_named(work):
    workdir, config = work
    _kill(_start(workdir, config, prefix=OTHER))
    before = _snapshot(workdir)
    record = json.loads(next(v for k, v in before.items() if k.startswith("owner-")))
    assert record["host"] == "login2" and record["pid"] == 1  # pid 1 of its namespace

    again = _run(workdir, config, TARGET)
    assert again.returncode != 0 and "Directory cannot be locked" in again.stderr
    assert "Removed the lock" not in again.stderr
    held = [line for line in again.stderr.splitlines() if "is held by" in line]
    assert len(held) == 1 and "snakemake pid 1 on host login2 since" in held[0], again.stderr
    assert "if that run is gone, run the same command with --unlock" in held[0]
    assert _snapshot(workdir) == before
    assert not (workdir / TARGET).exists()

    assert _run(workdir, config, "--unlock").returncode == 0  # the hint works
    assert _run(workdir, config, TARGET).returncode == 0
