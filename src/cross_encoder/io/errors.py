"""The error every reader raises on bad input: ``path:line: what is wrong``."""

from __future__ import annotations

import os

PathLike = str | os.PathLike


class InputError(ValueError):
    """A user-supplied file or argument is wrong; the message says where and what."""

    def __init__(self, path: PathLike | None, message: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = self.path or ""
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
