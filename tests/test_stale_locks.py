"""A lock left by a killed Snakemake run is removed; a live run's lock is kept."""

import subprocess
import sys
import time

import pytest

from cross_encoder.workflow import stale_locks

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


def _locks(workdir):
    locks = workdir / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("a\n")
    (locks / "0.output.lock").write_text("b\n")
    return locks


def test_lock_without_a_live_owner_is_removed(tmp_path):
    locks = _locks(tmp_path)
    removed = stale_locks.remove_stale_locks(tmp_path)
    assert sorted(p.name for p in removed) == ["0.input.lock", "0.output.lock"]
    assert list(locks.iterdir()) == []


def test_lock_of_a_live_snakemake_in_the_same_directory_is_kept(tmp_path):
    locks = _locks(tmp_path)
    # a process whose argv[0] is "snakemake", working in tmp_path
    proc = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 30"], cwd=tmp_path)
    try:
        for _ in range(100):  # wait for the exec
            if proc.pid in stale_locks.other_snakemake_processes(tmp_path):
                break
            time.sleep(0.02)
        assert proc.pid in stale_locks.other_snakemake_processes(tmp_path)
        assert stale_locks.remove_stale_locks(tmp_path) == []
        assert len(list(locks.iterdir())) == 2
    finally:
        proc.kill()
        proc.wait()
    assert len(stale_locks.remove_stale_locks(tmp_path)) == 2


def test_a_snakemake_elsewhere_does_not_keep_the_lock(tmp_path):
    (tmp_path / "a").mkdir()
    locks = _locks(tmp_path / "a")
    proc = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 30"], cwd=tmp_path)
    try:
        assert len(stale_locks.remove_stale_locks(tmp_path / "a")) == 2
        assert list(locks.iterdir()) == []
    finally:
        proc.kill()
        proc.wait()


def test_no_lock_folder_is_fine(tmp_path):
    assert stale_locks.remove_stale_locks(tmp_path) == []


@pytest.mark.parametrize(
    "cmdline, expected",
    [
        (["/venv/bin/python", "/venv/bin/snakemake", "--cores", "2"], True),
        (["snakemake", "eval"], True),
        (["/usr/bin/python3", "-m", "snakemake", "eval"], True),
        (["python", "-m", "cross_encoder.run", "--output_dir", "snakemake"], False),
        (["pytest", "tests/test_workflow.py"], False),
    ],
)
def test_is_snakemake(cmdline, expected):
    assert stale_locks.is_snakemake(cmdline) is expected
