"""Snakemake's directory lock with an owner record: a dead run's lock is removed, a live one's
never, also from another host.

Snakemake locks its working directory (``.snakemake/locks/N.input.lock``,
``N.output.lock``) while it runs and removes the lock when it exits. A run killed with
SIGKILL (an out-of-memory kill, a closed terminal, a SLURM time limit on the head job)
cannot remove it, and the next run stops with "Directory cannot be locked ... run snakemake
with --unlock".

When the head process takes the lock, :func:`install` makes it also write an owner record
beside it, ``.snakemake/locks/owner-<pid>-<random>.json``: hostname, boot id, PID namespace,
pid, the process's start time (clock ticks after boot, which tells a reused pid apart) and
the time the lock was taken, plus the names of the lock files it wrote. Snakemake ignores
the record (it reads only ``N.input.lock`` / ``N.output.lock``) and deletes it with the
lock folder on exit.

Before taking the lock, a run removes the lock files of a record whose owner is this host
(same hostname), this boot (same ``/proc/sys/kernel/random/boot_id``), the same PID
namespace, and whose process is gone (no such pid, another start time, or a zombie). Every
other lock stays:

- an owner on another host, in another PID namespace (a container) or of an earlier boot
  (the same hostname may belong to another machine): this machine cannot see that process;
- a lock file no record claims: written by a Snakemake without this hook (an older
  checkout, ``--sdm conda`` with the package only in the rules' environments); nothing here
  tells whether that run is alive, so it is left alone.

When Snakemake then refuses because a kept lock covers this run's files, one more line names
each holder (host, pid, since when) and, for one that may be dead, the ``--unlock`` hint.

Only a mode that takes the lock removes anything: dry runs, ``--report`` and
``--lint`` (which only warn or never look), ``--unlock``, ``--nolock`` and ``--touch`` leave
the locks as they are. Job subprocesses and cluster jobs never lock. Linux only (``/proc``);
elsewhere the record is written without a start time and nothing is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RECORD_GLOB = "owner-*.json"


@dataclass(frozen=True)
class Owner:
    """Who holds a lock: enough to tell, on the owner's machine, whether it is alive."""

    host: str
    boot_id: str
    pid_ns: str
    pid: int
    start_ticks: int | None
    since: float  # time.time() when the lock was taken

    def since_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _boot_id() -> str:
    return _read("/proc/sys/kernel/random/boot_id")


def _pid_ns() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of ``pid``; None when it does not
    exist. The command name in field 2 may hold spaces and parentheses: split after the
    last ``)``."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    fields = raw.rsplit(")", 1)[-1].split()
    try:
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    except (IndexError, ValueError):
        return None


def this_process() -> Owner:
    stat = _stat(os.getpid())
    return Owner(
        host=socket.gethostname(),
        boot_id=_boot_id(),
        pid_ns=_pid_ns(),
        pid=os.getpid(),
        start_ticks=stat[1] if stat else None,
        since=time.time(),
    )


def same_machine(owner: Owner) -> bool:
    """Whether this process can see the owner's process: same host, boot and PID namespace
    (all known)."""
    me = this_process()
    return bool(
        owner.boot_id
        and owner.pid_ns
        and (owner.host, owner.boot_id, owner.pid_ns) == (me.host, me.boot_id, me.pid_ns)
    )


def is_gone(owner: Owner) -> bool:
    """True only when the owner is on this machine (:func:`same_machine`) and its process no
    longer runs: no such pid, a pid reused by a process started at another time, or a
    zombie waiting for its parent."""
    if not same_machine(owner) or owner.start_ticks is None:
        return False
    stat = _stat(owner.pid)
    return stat is None or stat[1] != owner.start_ticks or stat[0] in ("Z", "X")


def write_owner(locks_dir: Path, lock_files: list[str]) -> Path:
    """Record this process as the owner of ``lock_files`` (names in ``locks_dir``)."""
    owner = this_process()
    path = Path(locks_dir) / f"owner-{owner.pid}-{secrets.token_hex(4)}.json"
    record = {**owner.__dict__, "locks": sorted(lock_files)}
    tmp = path.with_suffix(".tmp")  # not matched by RECORD_GLOB
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def read_owners(locks_dir: Path) -> list[tuple[Path, Owner, list[str]]]:
    """(record, owner, lock file names) of every readable record in ``locks_dir``. An
    unreadable record claims nothing (its lock files count as ownerless, hence kept)."""
    found = []
    for path in sorted(Path(locks_dir).glob(RECORD_GLOB)):
        try:
            data = json.loads(path.read_text())
            locks = [Path(name).name for name in data.pop("locks")]
            found.append((path, Owner(**data), locks))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return found


def _lock_files(locks_dir: Path) -> list[str]:
    return sorted(
        p.name
        for p in Path(locks_dir).glob("*.lock")
        if p.name.split(".")[0].isdigit() and p.is_file()
    )


def remove_stale_locks(locks_dir: Path | str) -> list[Owner]:
    """Remove the lock files (and records) of every owner that :func:`is_gone`; return those
    owners. Nothing else is touched."""
    removed = []
    for record, owner, locks in read_owners(Path(locks_dir)):
        if not is_gone(owner):
            continue
        for name in locks:
            with contextlib.suppress(FileNotFoundError):  # another run cleaned it first
                (Path(locks_dir) / name).unlink()
        with contextlib.suppress(FileNotFoundError):
            record.unlink()
        removed.append(owner)
    return removed


def describe_holders(locks_dir: Path | str) -> str:
    """One line naming who holds the locks in ``locks_dir`` and what to do."""
    locks_dir = Path(locks_dir)
    owners = read_owners(locks_dir)
    claimed = {name for _, _, locks in owners for name in locks}
    parts = []
    for _, owner, locks in owners:
        if not any((locks_dir / name).exists() for name in locks):
            continue
        where = f"snakemake pid {owner.pid} on host {owner.host} since {owner.since_text()}"
        if is_gone(owner):  # only when this run did not remove it (--touch)
            parts.append(f"{where}, gone: a run that is not --touch removes this lock")
        elif same_machine(owner):
            parts.append(f"{where}, still running: wait for it or stop it")
        else:
            parts.append(
                f"{where} ({'an earlier boot or ' if owner.host == socket.gethostname() else ''}"
                "another machine: it cannot be checked from here); if that run is gone,"
                " run the same command with --unlock, then again"
            )
    unclaimed = [name for name in _lock_files(locks_dir) if name not in claimed]
    if unclaimed:
        parts.append(
            f"{', '.join(unclaimed)} with no owner record (a Snakemake without this"
            " workflow's lock records); if no run is alive, run the same command with"
            " --unlock, then again"
        )
    if not parts:
        return ""
    return f"The lock in {locks_dir} is held by " + "; ".join(parts) + "."


def install(workflow) -> bool:
    """Make Snakemake's file-based lock (in this head process) remove a dead owner's lock
    before locking, record this process as the owner after, and name the holders when it
    refuses. Returns False where Snakemake's internals differ (nothing is changed then)."""
    try:
        from snakemake.exceptions import LockException
        from snakemake.persistence.file import FilePersistence
    except ImportError:
        return False
    original = FilePersistence.lock
    if getattr(original, "_with_owner", False):
        return True

    @contextlib.contextmanager
    def lock(self):
        if not isinstance(getattr(self, "_lockdir", None), str):  # another Snakemake
            with original(self):
                yield
            return
        locks_dir = Path(self._lockdir)
        touch = bool(getattr(getattr(self.dag, "workflow", None), "touch", False))
        if not touch and sys.platform.startswith("linux"):
            for owner in remove_stale_locks(locks_dir):
                print(
                    f"Removed the lock of an interrupted run (snakemake pid {owner.pid} on"
                    f" this host, locked since {owner.since_text()}, is gone); incomplete"
                    " outputs are rerun.",
                    file=sys.stderr,
                )
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(original(self))
            except LockException:
                line = describe_holders(locks_dir)
                if line:
                    print(line, file=sys.stderr)
                raise
            mine = [Path(p).name for p in getattr(self, "_lockfile", {}).values()]
            if mine:
                write_owner(locks_dir, mine)
            yield

    lock._with_owner = True
    FilePersistence.lock = lock
    return True
