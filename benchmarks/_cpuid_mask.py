"""Build and use ``cpuid_mask.c``: run a benchmark as if this CPU lacked its AVX-512 / VNNI /
AMX extensions, for every library in the process (see the C file). A benchmark imports it with
its own folder on ``sys.path`` (``from _cpuid_mask import preload_env``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "cpuid_mask.c"
PROFILES = ("avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni")
# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA) for the same CPUs
FROM_ONEDNN = {
    "AVX2": "avx2",
    "AVX2_VNNI": "avx2_vnni",
    "AVX512_CORE": "avx512_core",
    "AVX512_CORE_VNNI": "avx512_core_vnni",
}


def unavailable() -> str | None:
    """Why the mask cannot run here, or ``None``."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError as e:
        return f"cannot read /proc/cpuinfo ({e})"
    if " cpuid_fault" not in flags:
        return "this CPU/kernel has no CPUID faulting (no cpuid_fault flag in /proc/cpuinfo)"
    if not (shutil.which("gcc") or shutil.which("cc")):
        return "no C compiler (gcc or cc) to build benchmarks/cpuid_mask.c"
    return None


def build(cache: Path | None = None) -> Path:
    """``cpuid_mask.so``, compiled once per source version (atomically) into ``cache``."""
    cache = Path(cache or tempfile.gettempdir())
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    lib = cache / f"cpuid_mask-{digest}.so"
    if lib.exists():
        return lib
    cc = shutil.which("gcc") or shutil.which("cc")
    tmp = lib.with_name(f"{lib.name}.{os.getpid()}.tmp")
    cmd = [cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE), "-ldl"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{SOURCE}: {cc} failed: {res.stderr.strip().splitlines()[-1:]}")
    tmp.replace(lib)
    return lib


def preload_env(profile: str, cache: Path | None = None) -> dict[str, str]:
    """Environment that runs a child process under the mask ``profile`` (one of
    :data:`PROFILES`, or oneDNN's name for it, e.g. ``AVX2``)."""
    profile = FROM_ONEDNN.get(profile.upper(), profile)
    if profile not in PROFILES:
        raise ValueError(f"unknown CPUID mask {profile!r}: one of {', '.join(PROFILES)}")
    why = unavailable()
    if why:
        raise RuntimeError(f"cannot mask CPUID: {why}")
    lib = str(build(cache))
    preload = " ".join(p for p in (lib, os.environ.get("LD_PRELOAD", "")) if p)
    return {"LD_PRELOAD": preload, "CPUID_MASK": profile}
