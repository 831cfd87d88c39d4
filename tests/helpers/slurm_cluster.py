"""Start (or reuse) a real single-node SLURM for the cluster-profile tests.

Recipe: shared/docs/environment.md, "A real single-node SLURM". Slurm 22.05 from
Debian's apt (``.ci/install-slurm.sh``), munge for authentication, ``slurmctld``
and ``slurmd`` started by hand (PID 1 is not systemd, cgroups are v1, hence
``proctrack/linuxproc``), configuration at ``/etc/slurm/slurm.conf`` (the
executor plugin strips ``SLURM_*`` variables before its inner ``srun``, so a
custom ``SLURM_CONF`` breaks jobs).

:func:`start_cluster` returns a :class:`SlurmCluster`; its :meth:`SlurmCluster.stop`
stops only the daemons this module started, by pid. A cluster that was already
running is reused and left running. Anything that prevents a cluster raises
:class:`SlurmUnavailable` with the reason (the tests turn it into a skip, or a
failure under CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / ".ci" / "install-slurm.sh"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN_DIR = Path("/run/munge")
MUNGE_PID_FILE = MUNGE_RUN_DIR / "munged.pid"
# First line of the slurm.conf this module writes; marks the file as ours.
CONF_MARKER = "# Written by cross_encoder tests/slurm_cluster.py (single-node test cluster)."
PARTITION = "debug"
REQUIRED_BINARIES = ("slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel", "munged")


class SlurmUnavailable(RuntimeError):
    """No SLURM cluster can be used or started here; the message says why."""


@dataclass
class SlurmCluster:
    """A usable SLURM cluster: a partition to submit to and what to stop later."""

    partition: str
    cpus: int
    mem_mb: int
    reused: bool
    state_dir: Path | None = None
    # (name, pid) of every daemon this module started, in start order.
    started: list[tuple[str, int]] = field(default_factory=list)
    conf_backup: Path | None = None

    def stop(self) -> None:
        """Stop the daemons this module started (by pid), newest first.

        A reused cluster is left alone. A slurm.conf that was replaced is
        restored from its backup.
        """
        for name, pid in reversed(self.started):
            _terminate(name, pid)
        self.started.clear()
        if self.conf_backup is not None and self.conf_backup.exists():
            shutil.move(str(self.conf_backup), SLURM_CONF)
            self.conf_backup = None
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the daemons' logs (for error messages)."""
        if self.state_dir is None:
            return ""
        return _log_tails(self.state_dir, lines)


# --------------------------------------------------------------------------- utilities


def _run(cmd: list[str], timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()),
        None,
    )


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for a non-reaping PID 1 counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pid_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _terminate(name: str, pid: int, timeout: float = 15) -> None:
    """SIGTERM ``pid`` if it is still the daemon ``name``; SIGKILL after ``timeout``."""
    if not _pid_alive(pid) or not _pid_name(pid).startswith(name[:15]):
        return  # already gone, or the pid was reused by something else
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _read_pid(pid_file: Path, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().split()[0])
            if _pid_alive(pid):
                return pid
        time.sleep(0.2)
    raise SlurmUnavailable(f"no live pid in {pid_file} after {timeout:.0f} s")


def _log_tails(directory: Path, lines: int) -> str:
    parts = []
    for log in sorted(directory.glob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log} ---\n" + "\n".join(text))
    return "\n".join(parts)


def short_hostname() -> str:
    """``hostname -s``: the name slurmd registers under."""
    result = _run(["hostname", "-s"])
    name = result.stdout.strip()
    return name or socket.gethostname().split(".")[0]


def node_resources() -> tuple[int, int]:
    """CPUs and a safe RealMemory (MB) for this machine's node line.

    RealMemory above the real memory would drain the node, so declare 80 %.
    """
    cpus = os.cpu_count() or 1
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return cpus, max(1000, int(mem_kb / 1024 * 0.8))


# --------------------------------------------------------------------------- pieces


def slurm_installed() -> bool:
    return all(_which(b) for b in REQUIRED_BINARIES)


def ensure_installed() -> None:
    """Install slurm and munge with apt (``.ci/install-slurm.sh``) if any binary is missing."""
    if slurm_installed():
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("slurm is not installed and installing it needs root")
    if not shutil.which("apt-get"):
        raise SlurmUnavailable("slurm is not installed and apt-get is not available")
    try:
        result = _run(["bash", str(INSTALL_SCRIPT)], timeout=600)
    except subprocess.TimeoutExpired as e:
        raise SlurmUnavailable("installing slurm with apt timed out after 600 s") from e
    if result.returncode != 0 or not slurm_installed():
        raise SlurmUnavailable(
            f"installing slurm with apt failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def _partition_with_ready_node(timeout: float = 20) -> str | None:
    """The default partition of a cluster that answers with a usable node, else None."""
    try:
        result = _run(["sinfo", "--noheader", "--format=%P %t"], timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return None
    if result.returncode != 0:
        return None
    rows = [line.split() for line in result.stdout.splitlines() if len(line.split()) == 2]
    ready = [(p, s) for p, s in rows if s.rstrip("*~#$@^-") in {"idle", "mix", "alloc"}]
    if not ready:
        return None
    default = [p for p, _ in ready if p.endswith("*")]
    return (default[0] if default else ready[0][0]).rstrip("*")


def running_cluster() -> str | None:
    """The partition of an already running cluster worth reusing, else None.

    Asks ``sinfo`` only when a controller could be up: a local ``slurmctld``
    runs, or slurm.conf exists and was not written by this module (e.g. a real
    cluster's login node). Saves ``sinfo``'s retry timeouts otherwise.
    """
    if not _which("sinfo"):
        return None
    local_ctld = _run(["pgrep", "-x", "slurmctld"]).returncode == 0
    foreign_conf = SLURM_CONF.exists() and not SLURM_CONF.read_text().startswith(CONF_MARKER)
    if not (local_ctld or foreign_conf):
        return None
    return _partition_with_ready_node()


def munge_works() -> bool:
    munge, unmunge = _which("munge"), _which("unmunge")
    if not (munge and unmunge):
        return False
    try:
        cred = _run([munge, "-n"], timeout=10)
        if cred.returncode != 0:
            return False
        return _run([unmunge], input=cred.stdout, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start_munge(cluster: SlurmCluster) -> None:
    """Start munged as the munge user unless a working one is already running."""
    if munge_works():
        return
    if not MUNGE_KEY.exists():
        mungekey = _which("mungekey")
        cmd = (
            ["runuser", "-u", "munge", "--", mungekey, "--create"]
            if mungekey
            else [_which("create-munge-key") or "create-munge-key"]
        )
        result = _run(cmd)
        if result.returncode != 0 or not MUNGE_KEY.exists():
            raise SlurmUnavailable(f"cannot create {MUNGE_KEY}: {result.stderr.strip()}")
    MUNGE_RUN_DIR.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_RUN_DIR, "munge", "munge")
    MUNGE_PID_FILE.unlink(missing_ok=True)
    result = _run(["runuser", "-u", "munge", "--", _which("munged") or "munged"])
    if result.returncode != 0:
        raise SlurmUnavailable(f"munged failed to start: {result.stderr.strip()}")
    cluster.started.append(("munged", _read_pid(MUNGE_PID_FILE)))
    for _ in range(50):
        if munge_works():
            return
        time.sleep(0.1)
    raise SlurmUnavailable("munged started but `munge -n | unmunge` fails")


def slurm_conf_text(hostname: str, cpus: int, mem_mb: int, state_dir: Path) -> str:
    """A single-node slurm.conf: one node, partition ``debug``, no accounting."""
    return f"""{CONF_MARKER}
ClusterName=local
SlurmctldHost={hostname}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue (the test profile's status command).
MinJobAge=600
StateSaveLocation={state_dir}/slurmctld
SlurmdSpoolDir={state_dir}/slurmd
SlurmctldPidFile={state_dir}/slurmctld.pid
SlurmdPidFile={state_dir}/slurmd.pid
SlurmctldLogFile={state_dir}/slurmctld.log
SlurmdLogFile={state_dir}/slurmd.log
NodeName={hostname} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={hostname} Default=YES MaxTime=INFINITE State=UP
"""


def write_slurm_conf(cluster: SlurmCluster, hostname: str) -> None:
    """Write /etc/slurm/slurm.conf, keeping a foreign one as a backup to restore."""
    assert cluster.state_dir is not None
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    if SLURM_CONF.exists() and not SLURM_CONF.read_text().startswith(CONF_MARKER):
        backup = SLURM_CONF.with_name(f"slurm.conf.before-tests-{os.getpid()}")
        shutil.copy2(SLURM_CONF, backup)
        cluster.conf_backup = backup
    SLURM_CONF.write_text(
        slurm_conf_text(hostname, cluster.cpus, cluster.mem_mb, cluster.state_dir)
    )


def _start_daemon(cluster: SlurmCluster, name: str) -> None:
    assert cluster.state_dir is not None
    exe = _which(name) or name
    result = _run([exe], timeout=30)  # forks into the background
    if result.returncode != 0:
        raise SlurmUnavailable(
            f"{name} failed to start (exit {result.returncode}): {result.stderr.strip()}\n"
            + cluster.log_tail()
        )
    cluster.started.append((name, _read_pid(cluster.state_dir / f"{name}.pid")))


def wait_until_idle(hostname: str, timeout: float = 60) -> None:
    """Poll ``sinfo`` until ``hostname`` is idle in the test partition."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            result = _run(
                ["sinfo", "--noheader", "--Node", f"--nodes={hostname}", "--format=%t"],
                timeout=15,
            )
            last = (result.stdout + result.stderr).strip()
            if result.returncode == 0 and last.rstrip("*~#$@^-") == "idle":
                return
        time.sleep(0.5)
    raise SlurmUnavailable(f"node {hostname} not idle after {timeout:.0f} s (sinfo: {last!r})")


# --------------------------------------------------------------------------- entry point


def start_cluster() -> SlurmCluster:
    """Reuse a running SLURM or start a single-node one; raise SlurmUnavailable if neither.

    Installs slurm with apt only when its binaries are missing. Starting needs
    root. On failure, whatever was started is stopped again.
    """
    cpus, mem_mb = node_resources()
    partition = running_cluster()
    if partition is not None:
        return SlurmCluster(partition=partition, cpus=cpus, mem_mb=mem_mb, reused=True)
    if os.geteuid() != 0:
        raise SlurmUnavailable("no SLURM is running and starting one needs root")
    ensure_installed()

    hostname = short_hostname()
    state_dir = Path(tempfile.mkdtemp(prefix="cross-encoder-slurm-"))
    for sub in ("slurmctld", "slurmd"):
        (state_dir / sub).mkdir()
    cluster = SlurmCluster(
        partition=PARTITION, cpus=cpus, mem_mb=mem_mb, reused=False, state_dir=state_dir
    )
    try:
        start_munge(cluster)
        write_slurm_conf(cluster, hostname)
        _start_daemon(cluster, "slurmctld")
        _start_daemon(cluster, "slurmd")
        wait_until_idle(hostname)
    except BaseException as e:
        detail = cluster.log_tail()
        cluster.stop()
        if isinstance(e, SlurmUnavailable):
            raise SlurmUnavailable(f"{e}\n{detail}".strip()) from e
        if isinstance(e, (OSError, subprocess.SubprocessError)):
            raise SlurmUnavailable(f"starting SLURM failed: {e!r}\n{detail}".strip()) from e
        raise
    return cluster
