"""Snakemake's directory lock, released after a crash.

Snakemake locks its working directory (``.snakemake/locks/``) while it runs and removes the
lock when it exits. A run killed with SIGKILL (an out-of-memory kill, a closed terminal, a
SLURM time limit on the head job) cannot remove it, and the next run stops with "Directory
cannot be locked ... run snakemake with --unlock". A lock whose owner is gone protects
nothing, so the workflow removes it itself when no other Snakemake process on this machine
works in the same directory (the owner is always on this machine: the head process runs where
``snakemake`` was typed; cluster jobs never take the lock).

Linux only (``/proc``); elsewhere nothing is removed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def _cmdline(pid: str) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _cwd(pid: str) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve()
    except OSError:
        return None


def is_snakemake(cmdline: list[str]) -> bool:
    """A Snakemake process: ``snakemake ...`` or ``python [-m] snakemake ...``."""
    return any(Path(part).name in ("snakemake", "snakemake.py") for part in cmdline[:3])


def other_snakemake_processes(workdir: Path) -> list[int]:
    """Pids of Snakemake processes other than this one whose working directory is ``workdir``
    (Snakemake changes into ``--directory`` before it locks)."""
    workdir = Path(workdir).resolve()
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        if is_snakemake(_cmdline(entry.name)) and _cwd(entry.name) == workdir:
            found.append(int(entry.name))
    return found


def remove_stale_locks(workdir: Path | str = ".") -> list[Path]:
    """Remove ``workdir/.snakemake/locks/*`` if no other Snakemake process works in
    ``workdir``; return what was removed (nothing while another run is alive)."""
    locks_dir = Path(workdir) / ".snakemake" / "locks"
    if not Path("/proc/self").exists() or not locks_dir.is_dir():
        return []
    locks = sorted(p for p in locks_dir.iterdir() if p.is_file())
    if not locks or other_snakemake_processes(Path(workdir)):
        return []
    removed = []
    for lock in locks:
        try:
            lock.unlink()
            removed.append(lock)
        except FileNotFoundError:
            pass  # another process cleaned it first
    return removed
