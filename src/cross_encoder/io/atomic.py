"""Atomic outputs: a file or a folder is built under a pid-tagged temp name beside its final
path and renamed into place only when complete, so a killed process never leaves an output
that looks finished; temps of killed writers are removed by the next writer."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cross_encoder.io.errors import PathLike


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w") -> Iterator[IO]:
    """Write to ``path`` atomically: a temp file in the same directory, then ``os.replace``.

    On an exception the temp file is removed and ``path`` is untouched.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.{os.getpid()}.", suffix=".tmp", dir=p.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        kwargs = {"encoding": "utf-8", "newline": "\n"} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Build the folder ``path`` atomically: yield an empty temp folder beside it
    (``.<name>.<pid>.tmp``), and when the block ends without an exception replace ``path``
    (if it exists) with it. On an exception the temp folder is removed and ``path`` is
    untouched."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(p)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if p.is_dir() and not p.is_symlink():
            old = p.with_name(f".{p.name}.{os.getpid()}.old.tmp")
            p.rename(old)  # a rename each way: `path` is missing only between the two
            tmp.rename(p)
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            tmp.rename(p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(path: PathLike) -> None:
    """Remove temp files and folders of ``path`` left by killed writers
    (``.<name>.<pid>.*tmp`` whose process is gone), so a rerun after ``kill -9`` leaves no
    litter behind."""
    p = Path(path)
    for tmp in p.parent.glob(f".{glob.escape(p.name)}.*tmp"):
        pid = tmp.name[len(p.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
