"""``cross_encoder.hardware``: precision ``auto`` on a CPU (AMX flag, then a timing, cached per
machine), forced precisions, the GPU rule; one real timing and real subprocesses with oneDNN
capped below AMX."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest
import torch

from cross_encoder import hardware

AMX_CAPS = {"avx2": True, "avx512_f": True, "avx512_bf16": True, "amx_bf16": True}
AVX2_CAPS = {"avx2": True, "avx512_f": False, "amx_bf16": False}
HAS_AMX = bool(hardware.cpu_capabilities().get("amx_bf16"))


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSS_ENCODER_CACHE_DIR", str(tmp_path / "cache"))
    for var in hardware.ENV_CAPS:
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache" / "cpu_precision.json"


class Timer:
    """A fake :func:`measure_bf16_speedup` that counts its calls."""

    def __init__(self, speedup: float):
        self.speedup, self.calls = speedup, 0

    def __call__(self) -> float:
        self.calls += 1
        return self.speedup


def test_no_amx_flag_means_fp32_without_timing():
    def never():
        raise AssertionError("no timing without AMX")

    got = hardware.choose_cpu_precision(caps=AVX2_CAPS, measure=never)
    assert got.precision == "fp32" and "no AMX" in got.reason and "avx2" in got.reason


@pytest.mark.parametrize(
    ("speedup", "precision", "why"),
    [(5.2, "bf16", "5.2x fp32"), (1.5, "bf16", "1.5x"), (0.85, "fp32", "no usable AMX")],
)
def test_amx_flag_is_confirmed_by_the_timing(speedup, precision, why):
    got = hardware.choose_cpu_precision(caps=AMX_CAPS, measure=Timer(speedup))
    assert got.precision == precision and why in got.reason
    assert got.speedup == pytest.approx(speedup)


def test_the_choice_is_cached_per_machine_and_cap(own_cache, monkeypatch):
    timer = Timer(4.0)
    first = hardware.choose_cpu_precision(caps=AMX_CAPS, measure=timer)
    again = hardware.choose_cpu_precision(caps=AMX_CAPS, measure=timer)
    assert (first.cached, again.cached, timer.calls) == (False, True, 1)
    assert again.precision == first.precision == "bf16"
    assert again.describe().endswith("(cached)")
    entry = next(iter(json.loads(own_cache.read_text()).values()))
    assert entry["precision"] == "bf16" and entry["speedup"] == 4.0 and "ISA" in entry["cpu"]
    # A cap on oneDNN's ISA, another torch thread count or another CPU: measured again.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    capped = hardware.choose_cpu_precision(caps=AMX_CAPS, measure=Timer(0.8))
    assert (capped.precision, capped.cached) == ("fp32", False)
    assert "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16" in capped.reason
    other = hardware.choose_cpu_precision(caps={**AMX_CAPS, "amx_fp16": True}, measure=timer)
    assert not other.cached and timer.calls == 2
    assert len(json.loads(own_cache.read_text())) == 3


def test_a_broken_or_unwritable_cache_does_not_stop_a_run(own_cache, tmp_path, monkeypatch):
    own_cache.parent.mkdir(parents=True)
    own_cache.write_text("{not json")
    timer = Timer(3.0)
    assert hardware.choose_cpu_precision(caps=AMX_CAPS, measure=timer).precision == "bf16"
    assert timer.calls == 1 and json.loads(own_cache.read_text())  # rewritten, valid
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("CROSS_ENCODER_CACHE_DIR", str(blocker / "sub"))  # cannot be created
    assert hardware.choose_cpu_precision(caps=AMX_CAPS, measure=timer).precision == "bf16"


def test_resolve_forced_and_fp16_on_cpu(monkeypatch, caplog):
    monkeypatch.setattr(hardware, "cpu_capabilities", lambda: dict(AVX2_CAPS))
    assert hardware.resolve("fp32", "cpu") == "fp32"
    assert hardware.resolve("auto", "cpu") == "fp32"
    assert hardware.resolve(None, "cpu") == "fp32"
    with caplog.at_level("WARNING"):
        assert hardware.resolve("bf16", "cpu") == "bf16"  # forced: kept, with a warning
        assert hardware.resolve("fp16", "cpu") == "fp32"
    assert "bf16 forced although" in caplog.text and "fp16 has no fast CPU path" in caplog.text
    with pytest.raises(ValueError, match="precision must be one of"):
        hardware.resolve("int8", "cpu")


def test_resolve_logs_one_line_with_the_reason(monkeypatch, caplog):
    monkeypatch.setattr(hardware, "cpu_capabilities", lambda: dict(AMX_CAPS))
    monkeypatch.setattr(hardware, "measure_bf16_speedup", Timer(6.0))
    with caplog.at_level("INFO", logger="cross_encoder.hardware"):
        assert hardware.resolve("auto", "cpu") == "bf16"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "precision auto -> bf16" in line and "6.0x fp32" in line and "CPU:" in line


@pytest.mark.parametrize(("bf16_ok", "expected"), [(True, "bf16"), (False, "fp16")])
def test_gpu_rule_is_unchanged(monkeypatch, bf16_ok, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16_ok)
    assert hardware.resolve("auto", "cuda") == expected
    assert hardware.resolve("fp32", "cuda") == "fp32"
    assert hardware.resolve("fp16", "cuda") == "fp16"


def test_describe_cpu_names_model_flags_and_caps(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    text = hardware.describe_cpu(AMX_CAPS)
    assert hardware.cpu_model() in text
    assert "amx_bf16" in text and "avx2" in text and "ONEDNN_MAX_CPU_ISA=AVX2" in text


def test_real_timing_is_short_and_finite():
    start = time.perf_counter()
    speedup = hardware.measure_bf16_speedup()
    assert time.perf_counter() - start < 3.0  # budget 0.5 s; slack for a loaded machine
    assert math.isfinite(speedup) and speedup > 0


def _choose_in_subprocess(tmp_path, **env) -> dict:
    code = (
        "import json; from cross_encoder import hardware as h; "
        "c = h.choose_cpu_precision(); print(json.dumps([c.precision, c.reason]))"
    )
    full = {**os.environ, "CROSS_ENCODER_CACHE_DIR": str(tmp_path / "sub_cache"), **env}
    out = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True
    )
    precision, reason = json.loads(out.stdout.strip().splitlines()[-1])
    return {"precision": precision, "reason": reason}


def test_onednn_capped_at_avx2_chooses_fp32(tmp_path):
    got = _choose_in_subprocess(tmp_path, ONEDNN_MAX_CPU_ISA="AVX2")
    assert got["precision"] == "fp32", got
    if HAS_AMX:  # the flag says AMX: the timing has to be what said no
        assert "ONEDNN_MAX_CPU_ISA=AVX2" in got["reason"], got


@pytest.mark.skipif(not HAS_AMX, reason="needs a CPU with AMX (amx_bf16)")
def test_amx_cpu_chooses_bf16(tmp_path):
    got = _choose_in_subprocess(tmp_path)
    assert got["precision"] == "bf16", got


@pytest.mark.skipif(not HAS_AMX, reason="needs a CPU with AMX (amx_bf16)")
def test_amx_capped_away_chooses_fp32(tmp_path):
    """AVX-512 with bf16 instructions but no AMX: bf16 runs at ~0.7x fp32 here."""
    got = _choose_in_subprocess(tmp_path, ONEDNN_MAX_CPU_ISA="AVX512_CORE_BF16")
    assert got["precision"] == "fp32", got


def test_gpu_problem_names_what_is_missing(monkeypatch):
    """No machine here has a GPU: the three answers come from torch's own report, set here."""
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "CPU-only build" in hardware.gpu_problem(1)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "no CUDA GPU visible" in hardware.gpu_problem(1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert "8 processes on this node but 2 GPU(s)" in hardware.gpu_problem()
    assert hardware.gpu_problem(2) is None
