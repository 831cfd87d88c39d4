"""benchmarks/cpuid_mask.c: a child process sees the CPU without the masked extensions (torch,
via cpuinfo, reads CPUID like MLAS and OpenVINO do), and faults that are not CPUID still kill it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _cpuid_mask  # noqa: E402

pytestmark = pytest.mark.skipif(
    _cpuid_mask.unavailable() is not None, reason=str(_cpuid_mask.unavailable())
)

PROBE = (
    "import torch; c = torch.cpu.get_capabilities(); "
    "print(torch.backends.cpu.get_cpu_capability(), c['avx2'], c['avx512_f'], "
    "c['avx512_vnni'], c['amx_tile'])"
)


def probe(env: dict) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_avx2_hides_avx512_vnni_and_amx(tmp_path):
    got = probe(_cpuid_mask.preload_env("AVX2", cache=tmp_path))
    assert got == ["AVX2", "True", "False", "False", "False"]


def test_avx512_core_vnni_keeps_avx512(tmp_path):
    native = probe({})
    if native[2] != "True":
        pytest.skip("this CPU has no AVX-512 to keep")
    got = probe(_cpuid_mask.preload_env("avx512_core_vnni", cache=tmp_path))
    assert got[1:3] == ["True", "True"] and got[4] == "False"
    assert got[3] == native[3]


def test_real_fault_still_crashes(tmp_path):
    env = {**os.environ, **_cpuid_mask.preload_env("avx2", cache=tmp_path)}
    res = subprocess.run(
        [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"], env=env, capture_output=True
    )
    assert res.returncode == -11  # SIGSEGV, not a hang or a silent step over


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown CPUID mask"):
        _cpuid_mask.preload_env("sse2")
