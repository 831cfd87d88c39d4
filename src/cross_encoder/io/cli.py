"""Command-line glue: every ``main(argv) -> int`` is wrapped by :func:`cli`, so bad input is
one line on stderr and exit 2, and logs go to stderr in one format."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from cross_encoder.io.errors import InputError

F = TypeVar("F", bound=Callable[..., int])


def cli(func: F) -> F:
    """Decorate a ``main(argv) -> int``: bad input becomes one line on stderr and exit 2.

    :class:`InputError` is printed as is. An ``OSError`` that names a file (permission
    denied, disk full, a folder where a file should be) is a problem of the user's files
    too, and gets the same one line instead of a traceback. Ctrl-C exits 130 with one line.
    Writers are atomic, so in every case nothing half-written is left behind.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            return func(*args, **kwargs)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            if e.filename is None:
                raise
            what = e.strerror or type(e).__name__
            print(
                f"error: {e.filename}: {what}; check the path and its permissions", file=sys.stderr
            )
            return 2
        except KeyboardInterrupt:
            print("error: interrupted; no half-written output is left", file=sys.stderr)
            return 130

    return wrapper  # type: ignore[return-value]


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr in the package's one format."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def require_path(value: str | None, flag: str, why: str) -> str:
    """The path given as ``flag``, which ``why`` (e.g. "with --do_train") makes required:
    an :class:`InputError` when it is missing or names nothing."""
    if not value:
        raise InputError(None, f"{flag} is required {why}")
    if not os.path.exists(value):
        raise InputError(value, f"no such file or folder (given as {flag})")
    return value


def parse_shard(value: str | None) -> tuple[int, int]:
    """``i/k`` or Snakemake's scatter item ``i-of-k`` (1-based) -> ``(i, k)``; None: (1, 1)."""
    if not value:
        return 1, 1
    parts = value.replace("-of-", "/").split("/")
    try:
        i, k = (int(x) for x in parts)
    except ValueError:
        raise ValueError(f"--prediction_shard must be i/k (e.g. 2/4), got {value!r}") from None
    if not 1 <= i <= k:
        raise ValueError(f"--prediction_shard {value}: need 1 <= i <= k")
    return i, k
