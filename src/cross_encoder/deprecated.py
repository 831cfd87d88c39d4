"""Old module names, kept working in one marked place.

Before the stage split each command lived at the top of the package
(``python -m cross_encoder.bm25``). Those names still import and still run with
``python -m``, and each warns once with a :class:`DeprecationWarning` that names the module
to use instead. Nothing in the package, the workflow or the docs uses them.

There are no files for the old names: a finder on :data:`sys.meta_path`, installed when
``cross_encoder`` is imported, answers for exactly the names in :data:`MOVED` with a small
module that forwards every attribute to the new one.

References:
    sentence-transformers keeps moved paths the same way
    (``sentence_transformers/cross_encoder/evaluation/deprecated.py``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

PACKAGE = "cross_encoder"

#: old module (under ``cross_encoder.``) -> the module where its code lives now
MOVED: dict[str, str] = {
    "bm25": "cross_encoder.first_stage.bm25",
    "dense": "cross_encoder.first_stage.dense",
    "fusion": "cross_encoder.first_stage.fusion",
    "negatives": "cross_encoder.first_stage.negatives",
    "synthetic": "cross_encoder.data.synthetic",
    "model_card": "cross_encoder.modeling.card",
}

_warned: set[str] = set()

# The code of every alias module. ``__spec__.name`` is the old name also under
# ``python -m``, where ``__name__`` is "__main__".
_ALIAS_SOURCE = """\
from cross_encoder.deprecated import moved as _moved

_new = _moved(__spec__.name, as_main=__name__ == "__main__")
main = _new.main


def __getattr__(name):
    return getattr(_new, name)


if __name__ == "__main__":
    raise SystemExit(main())
"""


def new_name(old: str) -> str:
    """The module that replaces an old one.

    Args:
        old: the old module name, ``cross_encoder.bm25`` or ``bm25``.

    Returns:
        The new module's full name (``cross_encoder.first_stage.bm25``).

    Raises:
        KeyError: ``old`` is not a moved module.
    """
    return MOVED[old.removeprefix(PACKAGE + ".")]


def moved(old: str, as_main: bool = False) -> ModuleType:
    """Warn (once per process and name) that ``old`` moved, and import the new module.

    Args:
        old: the old module's full name.
        as_main: the alias runs as ``python -m``: the warning is then attributed to the
            command itself (shown by Python's default filters) rather than to the importer.

    Returns:
        The new module.
    """
    new = new_name(old)
    if old not in _warned:
        _warned.add(old)
        warnings.warn(
            f"{old} is deprecated and will be removed; use {new}"
            + (f" (python -m {new})" if as_main else ""),
            DeprecationWarning,
            stacklevel=2 if as_main else 3,
        )
    return importlib.import_module(new)


class _AliasLoader(importlib.abc.InspectLoader):
    """Loads an old name as the forwarding module (``get_code`` also serves ``runpy``)."""

    def get_source(self, fullname: str) -> str:
        return _ALIAS_SOURCE

    def get_code(self, fullname: str):
        return compile(_ALIAS_SOURCE, f"<{fullname}: deprecated alias>", "exec", dont_inherit=True)

    def is_package(self, fullname: str) -> bool:
        return False


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the old names in :data:`MOVED`, and nothing else."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, rest = fullname.partition(".")
        if prefix != PACKAGE or rest not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(), origin="deprecated alias")


def install() -> None:
    """Put the finder for the old names on :data:`sys.meta_path` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
