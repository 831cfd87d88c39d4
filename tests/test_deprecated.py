"""The old top-level module names (cross_encoder.deprecated): each imports and runs with
``python -m`` as before, warns once with a DeprecationWarning naming the new module, and
nothing of the package, workflow or docs uses them any more."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import cross_encoder
from cross_encoder import deprecated

REPO = Path(__file__).resolve().parents[1]
OLD = sorted(deprecated.MOVED)


@pytest.fixture
def fresh(monkeypatch):
    """Forget that an old name was imported or warned about, so each test sees a first use."""
    for old in OLD:
        monkeypatch.delitem(sys.modules, f"cross_encoder.{old}", raising=False)
        monkeypatch.delattr(cross_encoder, old, raising=False)
    monkeypatch.setattr(deprecated, "_warned", set())


@pytest.mark.parametrize("old", OLD)
def test_old_name_warns_once_and_forwards(fresh, old):
    new = importlib.import_module(deprecated.MOVED[old])
    with pytest.warns(DeprecationWarning, match=re.escape(deprecated.MOVED[old])) as caught:
        module = importlib.import_module(f"cross_encoder.{old}")
    assert len(caught) == 1
    assert module.main is new.main
    for name in (n for n in vars(new) if not n.startswith("_")):
        assert getattr(module, name) is getattr(new, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sys.modules.pop(f"cross_encoder.{old}")
        importlib.import_module(f"cross_encoder.{old}")  # a second time: no warning


def test_from_import_and_unknown_names(fresh):
    with pytest.warns(DeprecationWarning, match="cross_encoder.modeling.card"):
        from cross_encoder import model_card
    assert model_card.main is importlib.import_module("cross_encoder.modeling.card").main
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("cross_encoder.no_such_module")


@pytest.mark.parametrize("old", ["bm25", "model_card"])
def test_python_dash_m_old_name_runs_and_warns(old):
    proc = subprocess.run(
        [sys.executable, "-m", f"cross_encoder.{old}", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: python -m {deprecated.MOVED[old]}")
    assert "DeprecationWarning" in proc.stderr
    assert f"use {deprecated.MOVED[old]}" in proc.stderr


def test_nothing_teaches_the_old_names():
    """README, docs, benchmarks, the workflow, the Makefile and the package use only the new
    names (this file and deprecated.py are where the old ones live)."""
    pattern = re.compile(r"cross_encoder\.(" + "|".join(OLD) + r")\b")
    places = [REPO / "README.md", REPO / "Makefile", REPO / "Snakefile"]
    for folder, glob in [
        ("docs", "*.md"),
        ("benchmarks", "*"),
        ("workflow", "**/*"),
        ("src", "**/*.py"),
        ("tests", "**/*.py"),
    ]:
        places += [p for p in (REPO / folder).glob(glob) if p.is_file()]
    skip = {REPO / "src/cross_encoder/deprecated.py", Path(__file__).resolve()}
    found = [
        f"{p.relative_to(REPO)}:{i}"
        for p in places
        if p not in skip
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, found
