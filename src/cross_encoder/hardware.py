"""Which floating-point precision is fast on this machine: bf16 where the CPU has AMX and a
short matmul timing confirms it, fp32 otherwise; GPUs keep their own rule.

Why both a flag check and a timing: ``torch.cpu.get_capabilities()`` (cpuinfo) reports what
the silicon has, not what oneDNN will use. ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` (or a VM
that hides AMX state from the kernel) leaves ``amx_bf16`` listed while bf16 matmuls run at
0.6-0.9x fp32, and at ``AVX2`` at 0.01x. ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is
true on any AVX-512 CPU. So the capability check only decides whether a timing is worth
running; the timing decides.

The timing result is cached per machine in ``<cache>/cpu_precision.json`` (``<cache>`` is
``$CROSS_ENCODER_CACHE_DIR``, else ``$XDG_CACHE_HOME/cross_encoder``, else
``~/.cache/cross_encoder``), keyed by CPU model, ISA flags, torch version and the
``ONEDNN_MAX_CPU_ISA`` / ``ATEN_CPU_CAPABILITY`` caps, so a new CPU, torch or cap measures
again. A file lock makes concurrent processes (``torchrun`` ranks) measure once and agree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Flags worth printing in logs and benchmarks (what decides matmul speed on x86).
ISA_FLAGS = (
    "avx2",
    "avx512_f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)
# bf16 must beat fp32 by this factor on the probe matmul to be chosen. AMX measures 5-10x
# at MiniLM's shapes; AVX512_CORE_BF16 without AMX 0.6-0.9x; AVX2 0.01x.
MIN_SPEEDUP = 1.5
# One layer's linear shape of a MiniLM-sized model over 256 tokens (h=384 -> 4h=1536).
PROBE_SHAPE = (256, 384, 1536)
CACHE_VERSION = 1
# oneDNN (torch's and OpenVINO's), ATen's vectorized kernels, MKL's GEMMs (torch fp32 linear),
# OpenVINO's own kernels (OV_CPU_MAX_ISA: honoured only by debug-caps builds in 2026.4)
ENV_CAPS = (
    "ONEDNN_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "OV_CPU_MAX_ISA",
)


@dataclass(frozen=True)
class Choice:
    """What ``auto`` chose and why (one log line: :meth:`describe`)."""

    precision: str  # "bf16" | "fp32" (CPU); "bf16" | "fp16" (CUDA)
    reason: str
    speedup: float | None = None  # measured bf16 / fp32 matmul throughput
    cached: bool = False

    def describe(self) -> str:
        """One log line: what ``precision: auto`` chose and why."""
        where = " (cached)" if self.cached else ""
        return f"precision auto -> {self.precision}: {self.reason}{where}"


def cpu_capabilities() -> dict:
    """``torch.cpu.get_capabilities()`` (cpuinfo flags), or ``{}`` if this torch lacks it."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is None:  # pragma: no cover - torch < 2.6
        return {}
    try:
        return dict(get())
    except Exception:  # pragma: no cover - cpuinfo failed to initialise
        return {}


def cpu_model(caps: dict | None = None) -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` ``model name``, else cpuinfo's)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    caps = cpu_capabilities() if caps is None else caps
    return str(caps.get("cpu_name") or "unknown CPU")


def isa_flags(caps: dict | None = None) -> list[str]:
    """The flags of :data:`ISA_FLAGS` this CPU reports."""
    caps = cpu_capabilities() if caps is None else caps
    return [f for f in ISA_FLAGS if caps.get(f)]


def isa_caps() -> dict[str, str]:
    """Environment variables that cap which kernels oneDNN / ATen may use."""
    return {k: os.environ[k] for k in ENV_CAPS if os.environ.get(k)}


def describe_cpu(caps: dict | None = None) -> str:
    """``'<model>; ISA: avx2 avx512_f ...; caps: ONEDNN_MAX_CPU_ISA=AVX2'``."""
    caps = cpu_capabilities() if caps is None else caps
    text = f"{cpu_model(caps)}; ISA: {' '.join(isa_flags(caps)) or 'none of ' + str(ISA_FLAGS)}"
    capped = isa_caps()
    if capped:
        text += "; caps: " + " ".join(f"{k}={v}" for k, v in capped.items())
    return text


def measure_bf16_speedup(
    shape: tuple[int, int, int] = PROBE_SHAPE, budget_s: float = 0.5, min_reps: int = 3
) -> float:
    """bf16 / fp32 throughput of ``torch.matmul`` at ``shape`` (m, k, n), best of alternating
    repetitions, on this process' threads. Stops when ``budget_s`` is spent (bf16 without
    hardware support takes ~0.1 s per call here, so it gets only a couple)."""
    m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    a32, b32 = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    a16, b16 = a32.to(torch.bfloat16), b32.to(torch.bfloat16)
    best = {"fp32": float("inf"), "bf16": float("inf")}
    pairs = {"fp32": (a32, b32), "bf16": (a16, b16)}
    start = time.perf_counter()
    for a, b in pairs.values():  # warm-up: oneDNN builds its kernels on first use
        torch.matmul(a, b)
    reps = 0
    while reps < min_reps or time.perf_counter() - start < budget_s / 4:
        for name, (a, b) in pairs.items():
            t = time.perf_counter()
            torch.matmul(a, b)
            best[name] = min(best[name], time.perf_counter() - t)
        reps += 1
        if time.perf_counter() - start > budget_s or reps >= 50:
            break
    return best["fp32"] / max(best["bf16"], 1e-12)


def cache_dir() -> Path:
    """Where per-machine measurements are cached (``CROSS_ENCODER_CACHE_DIR``, else XDG)."""
    env = os.environ.get("CROSS_ENCODER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cross_encoder"


def cache_key(caps: dict | None = None) -> str:
    """What the measurement depends on: CPU, flags, torch, kernel caps, threads."""
    caps = cpu_capabilities() if caps is None else caps
    parts = {
        "v": CACHE_VERSION,
        "cpu": cpu_model(caps),
        "flags": sorted(k for k, v in caps.items() if v is True),
        "torch": torch.__version__,
        "caps": isa_caps(),
        "threads": torch.get_num_threads(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive ``flock`` on ``path`` (no-op where that is impossible)."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a")  # noqa: SIM115 - held for the duration of the block
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
    finally:
        f.close()


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict) -> None:
    from cross_encoder.io import atomic_write

    try:
        with atomic_write(path) as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
    except OSError as e:  # a read-only home must not stop a run
        logger.debug("cannot write %s: %s", path, e)


def choose_cpu_precision(
    use_cache: bool = True,
    caps: dict | None = None,
    measure=None,
    min_speedup: float = MIN_SPEEDUP,
) -> Choice:
    """bf16 if the CPU lists ``amx_bf16`` and bf16 matmuls measure >= ``min_speedup`` x fp32
    here, else fp32. ``caps`` and ``measure`` are for tests."""
    caps = cpu_capabilities() if caps is None else caps
    if not caps.get("amx_bf16"):
        have = " ".join(isa_flags(caps)) or "none"
        return Choice("fp32", f"no AMX on this CPU (amx_bf16 not listed; ISA: {have})")
    path = cache_dir() / "cpu_precision.json"
    key = cache_key(caps)
    lock = _locked(path.with_name(path.name + ".lock")) if use_cache else contextlib.nullcontext()
    with lock:
        if use_cache:
            hit = _read_cache(path).get(key)
            if isinstance(hit, dict) and hit.get("precision") in ("bf16", "fp32"):
                return Choice(hit["precision"], hit.get("reason", ""), hit.get("speedup"), True)
        speedup = float((measure or measure_bf16_speedup)())
        capped = isa_caps()
        cap_text = f" under {' '.join(f'{k}={v}' for k, v in capped.items())}" if capped else ""
        if speedup >= min_speedup:
            choice = Choice(
                "bf16",
                f"AMX (amx_bf16) and a bf16 matmul ran {speedup:.1f}x fp32{cap_text} "
                f"(threshold {min_speedup}x)",
                round(speedup, 3),
            )
        else:
            choice = Choice(
                "fp32",
                f"amx_bf16 is listed but a bf16 matmul ran only {speedup:.2f}x fp32{cap_text} "
                f"(threshold {min_speedup}x): no usable AMX",
                round(speedup, 3),
            )
        if use_cache:
            data = _read_cache(path)
            entry = asdict(choice)
            entry.pop("cached")
            data[key] = {**entry, "cpu": describe_cpu(caps), "torch": torch.__version__}
            _write_cache(path, data)
        return choice


def resolve(requested: str | None, device: str | torch.device = "cpu", log: bool = True) -> str:
    """The precision to run in: ``fp32``, ``bf16`` or ``fp16``.

    * ``auto`` on CPU: :func:`choose_cpu_precision`; on CUDA: bf16 where the GPU has it
      natively, else fp16 (the training rule of old);
    * ``fp16`` on CPU: no CPU here has a fast fp16 path; ``auto``'s choice, with a warning;
    * ``fp32`` / ``bf16``: as named (a forced ``bf16`` on a CPU where it is slow warns).

    With ``log``, one INFO line says what was chosen and why.
    """
    req = requested or "auto"
    if req not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {req!r}")
    kind = torch.device(device).type
    say = logger.info if log else logger.debug
    if kind == "cuda":
        if req != "auto":
            return req
        ok = torch.cuda.is_bf16_supported(including_emulation=False)
        choice = "bf16" if ok else "fp16"
        say(
            "precision auto -> %s: %s",
            choice,
            "CUDA GPU " + ("with" if ok else "without") + " bf16",
        )
        return choice
    if req == "fp32":
        say("precision fp32 (as asked)")
        return "fp32"
    if req == "fp16":
        choice = choose_cpu_precision()
        logger.warning(
            "precision fp16 asked for on a CPU: fp16 has no fast CPU path; using %s instead",
            choice.describe(),
        )
        return choice.precision
    choice = choose_cpu_precision()
    if req == "bf16":
        if choice.precision != "bf16":
            logger.warning("precision bf16 forced although %s", choice.describe())
        else:
            say("precision bf16 (as asked; %s)", choice.reason)
        return "bf16"
    say("%s; CPU: %s", choice.describe(), describe_cpu())
    return choice.precision


def torch_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a resolved precision name."""
    return DTYPES[precision]


def log_peak_gpu_memory(stage: str) -> None:
    """Log ``torch.cuda.max_memory_allocated`` of this rank (CUDA only)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = torch.cuda.max_memory_allocated()
        logger.info("%s peak GPU memory: %.2f GiB (rank-local)", stage, peak / 2**30)


def gpu_problem(local_ranks: int | None = None) -> str | None:
    """Why a job that was granted GPUs (``--require_gpu``, the workflow's ``train.use_gpu``)
    cannot use them, or None: no CUDA device visible (a CPU-only torch build, or none
    granted), or fewer devices than the ``local_ranks`` processes torchrun starts on this node
    (``LOCAL_WORLD_SIZE``), each of which takes the device ``LOCAL_RANK``."""
    if local_ranks is None:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    build = f"torch {torch.__version__}"
    if torch.version.cuda is None:
        return (
            f"no CUDA GPU: {build} is a CPU-only build (install the GPU environment, "
            "envs/cross_encoder_gpu.yaml, or set train.use_gpu: false)"
        )
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        return f"no CUDA GPU visible to {build}{where}: was the job granted one?"
    n = torch.cuda.device_count()
    if local_ranks > n:
        return (
            f"{local_ranks} processes on this node but {n} GPU(s) visible: ask the scheduler "
            "for as many GPUs as torchrun --nproc_per_node starts"
        )
    return None
