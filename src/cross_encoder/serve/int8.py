"""Serving the int8 model the run's quantize step accepted (``--quantize auto|int8|none``).

The workflow's ``quantize`` rule (:mod:`cross_encoder.reranking.quantize`) writes
``results/<run>/rerank/quantization.json`` and, when the dev guard accepts int8, the int8
model beside it (``int8/``). The server finds that decision next to the model folder it serves
(``<model>/quantization.json``, then ``<model>/../rerank/quantization.json``, or
``--quantization_file``), checks that it was made for these weights (the decision names its
model folder; both folders' weights must have the same fingerprint) and then, as rerank's own
``--quantize``:

* ``int8``: the int8 model where it was accepted on dev; full precision where it was rejected;
  a one-line error where there is no decision, it is for other weights, or the ``openvino``
  extra is missing;
* ``auto`` (the default): the int8 model where it was accepted on dev *and* is faster than the
  full-precision path here: the quantize step's own timing when it ran on this CPU against the
  same full-precision path, else a short timing at start-up; full precision otherwise;
* ``none``: full precision.

The int8 model is loaded with :func:`~cross_encoder.reranking.quantize.load_int8`, so a pair
gets the score rerank's int8 predict gives it. ``/info`` says which path runs and why.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cross_encoder.io import InputError

logger = logging.getLogger(__name__)

MODES = ("auto", "int8", "none")
PROBE_PAIRS = 64  # pairs per timing at start-up (about a second per path on 2 cores)


@dataclass
class Int8Choice:
    """What ``--quantize`` resolved to: ``use`` the int8 model of ``int8_dir``, and why."""

    mode: str
    use: bool
    reason: str
    decision_file: str | None = None
    int8_dir: str | None = None
    decision: dict = field(default_factory=dict)
    speed: dict | None = None

    def info(self) -> dict:
        d = self.decision
        out = {
            "mode": self.mode,
            "int8": self.use,
            "reason": self.reason,
            "decision_file": self.decision_file,
            "int8_dir": self.int8_dir if self.use else None,
        }
        if d:
            out["dev"] = {
                k: d.get(k)
                for k in (
                    "accepted",
                    "metric",
                    "full_precision",
                    "int8",
                    "metric_drop",
                    "mean_spearman",
                    "full_precision_path",
                    "dev_queries",
                )  # fmt: skip
            }
        if self.speed:
            out["speed"] = self.speed
        return out


def candidate_files(model_dir: str | os.PathLike) -> list[Path]:
    """Where a run keeps the decision of the model folder it served from."""
    folder = Path(model_dir)
    return [folder / "quantization.json", folder.parent / "rerank" / "quantization.json"]


def find_decision(model_dir, quantization_file: str | None) -> Path | None:
    if quantization_file:
        path = Path(quantization_file)
        if not path.is_file():
            raise InputError(path, "no such --quantization_file")
        return path
    return next((p for p in candidate_files(model_dir) if p.is_file()), None)


def read_decision(path: Path) -> dict:
    try:
        decision = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(path, f"not a quantization decision: {e}") from None
    if not isinstance(decision, dict) or "accepted" not in decision:
        raise InputError(path, "not a quantization decision (no 'accepted')")
    return decision


def decision_model(decision: dict, path: Path) -> Path | None:
    """The model folder the decision was made for: its ``model`` as given, relative to the
    working directory or to a folder above the decision (the workflow writes it relative to
    the project: ``results/<run>/model``)."""
    name = decision.get("model")
    if not name:
        return None
    p = Path(name)
    if p.is_absolute():
        return p if p.is_dir() else None
    for base in (Path.cwd(), *path.resolve().parents):
        if (base / p).is_dir():
            return base / p
    return None


def same_weights(model_dir, decision: dict, path: Path) -> tuple[bool | None, str]:
    """``(True|False|None, why)``: whether the decision's model has the served weights (None:
    its folder is not here to compare)."""
    from cross_encoder import modeling
    from cross_encoder.reranking.quantize import fingerprint

    other = decision_model(decision, path)
    if other is None:
        return None, f"its model {decision.get('model')!r} is not found to compare weights"
    served = Path(modeling.resolve_model(str(model_dir)))
    if fingerprint(served) == fingerprint(other):
        return True, f"made for {other} (same weights)"
    return False, f"made for {other}, whose weights differ from {served}"


def choose(
    model_dir,
    mode: str,
    quantization_file: str | None,
    full_path: str,
    probe: Callable[[object], dict] | None = None,
) -> Int8Choice:
    """Resolve ``--quantize``. ``full_path``: the full-precision path the server would run
    (``torch bf16``, ``openvino fp32``...), compared with the one the decision timed.
    ``probe(int8_dir) -> {"speedup", ...}`` times both paths here (auto only, when the
    decision's timing is from another CPU or path)."""
    from cross_encoder import hardware
    from cross_encoder.reranking import quantize

    if mode not in MODES:
        raise ValueError(f"--quantize must be one of {', '.join(MODES)}")
    if mode == "none":
        return Int8Choice(mode, False, "quantize none: full precision")
    path = find_decision(model_dir, quantization_file)
    if path is None:
        where = " or ".join(str(p) for p in candidate_files(model_dir))
        why = f"no quantization.json from the quantize step ({where})"
        if mode == "int8":
            raise InputError(None, f"--quantize int8: {why}; give --quantization_file")
        return Int8Choice(mode, False, f"{why}: full precision")
    decision = read_decision(path)
    made = Int8Choice(mode, False, "", str(path), decision=decision)
    same, why_same = same_weights(model_dir, decision, path)
    if same is False or (same is None and mode == "auto"):
        if mode == "int8":
            raise InputError(path, f"--quantize int8: this decision was {why_same}")
        made.reason = f"{path}: {why_same}; full precision"
        return made
    if not decision.get("accepted"):
        made.reason = f"int8 rejected on dev: {decision.get('reason')}; full precision"
        return made
    missing = quantize.missing_extra()
    if missing:
        if mode == "int8":
            raise InputError(None, f"--quantize int8: {missing}")
        made.reason = f"int8 accepted on dev but {missing}; full precision"
        return made
    int8_dir = path.parent / str(decision.get("int8_dir") or "int8")
    if not (int8_dir / quantize.INT8_XML).is_file():
        if mode == "int8":
            raise InputError(int8_dir, f"--quantize int8: {quantize.INT8_XML} missing")
        made.reason = f"int8 accepted on dev but {int8_dir} holds no model; full precision"
        return made
    made.int8_dir = str(int8_dir)
    speed = None
    if mode == "auto":
        recorded = decision.get("speed") or {}
        if (
            recorded.get("cpu") == hardware.describe_cpu()
            and decision.get("full_precision_path") == full_path
            and "speedup" in recorded
        ):
            speed = {**recorded, "source": "the quantize step, on this CPU, against " + full_path}
        elif probe is not None:
            speed = {**probe(int8_dir), "source": f"timed at start-up against {full_path}"}
    use, why = quantize.choose(decision, mode, speed)
    if use and same is None:
        why += f" (not verified: {why_same})"
    made.use, made.reason, made.speed = use, why, speed
    return made


def time_paths(
    int8_score: Callable,
    full_score: Callable,
    batch,
    repeats: int = 2,
    names: tuple[str, str] = ("int8", "full"),
    batches: int = 1,
) -> dict:
    """``{"<a>_pairs_per_s", "<b>_pairs_per_s", "speedup", "pairs"}`` for ``names`` (a, b):
    the best of ``repeats`` interleaved timings of a call per path, after a warm-up; a call
    scores ``batches`` times the padded ``batch``; ``speedup`` = b's time / a's."""
    n = len(batch["input_ids"]) * batches
    best = dict.fromkeys(names, float("inf"))
    int8_score(batch)
    full_score(batch)
    for _ in range(repeats):
        for name, fn in zip(names, (int8_score, full_score), strict=True):
            t = time.perf_counter()
            fn(batch)
            best[name] = min(best[name], time.perf_counter() - t)
    a, b = names
    return {
        f"{a}_pairs_per_s": round(n / best[a], 2),
        f"{b}_pairs_per_s": round(n / best[b], 2),
        "speedup": round(best[b] / best[a], 3),
        "pairs": n,
    }


def probe_pairs(template, vocab_size: int, n: int = PROBE_PAIRS, seed: int = 0) -> list:
    """``n`` pairs of seeded random tokens at MS MARCO lengths (a 10-token query, passages of
    60-140 tokens, cut to the model's max length): speed does not depend on the words."""
    rng = np.random.default_rng(seed)
    lo = min(1000, vocab_size // 2)
    q = rng.integers(lo, vocab_size, 10).tolist()
    return [
        template.build(q, rng.integers(lo, vocab_size, int(k)).tolist())
        for k in rng.integers(60, 141, n)
    ]
