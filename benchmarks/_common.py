"""Helpers shared by the benchmark scripts: the machine header every figure is printed under,
SciFact loading and passage spans. A benchmark imports them with its own folder on
``sys.path`` (``from _common import ...``); no benchmark imports another benchmark."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import torch


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all cores busy over the next ``seconds`` (``/proc/stat``; NaN elsewhere). The
    load average lags by minutes: right after another job ends it still reads ~2 on an idle
    machine, and a job that just started barely shows in it."""
    import time

    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])  # idle + iowait, total

    try:
        i0, t0 = sample()
        time.sleep(seconds)
        i1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def machine_header(threads: int) -> dict:
    """CPU model, ISA flags, the precision auto chooses and why, load average."""
    from cross_encoder import hardware

    caps = hardware.cpu_capabilities()
    choice = hardware.choose_cpu_precision()
    resolved = hardware.resolve("auto", "cpu", log=False)
    flags = sorted(k for k, v in caps.items() if v is True and k.startswith(("amx", "avx512")))
    return {
        "cpu": hardware.cpu_model(caps),
        "isa_flags": flags,
        "isa_caps": hardware.isa_caps(),
        "cpuid_mask": os.environ.get("CPUID_MASK")
        if "cpuid_mask" in os.environ.get("LD_PRELOAD", "")
        else None,
        "precision": resolved,
        "precision_reason": choice.reason + (" (cached)" if choice.cached else ""),
        "bf16_speedup": choice.speedup,
        "torch": torch.__version__,
        "threads": threads,
        "loadavg": os.getloadavg(),
        "cpu_busy": cpu_busy(),
    }


def print_header(h: dict) -> None:
    print(f"CPU: {h['cpu']}")
    print(f"ISA flags: {' '.join(h['isa_flags']) or '(no amx*/avx512* flags)'}")
    if h["isa_caps"]:
        print("kernel caps: " + " ".join(f"{k}={v}" for k, v in h["isa_caps"].items()))
    if h.get("cpuid_mask"):
        print(
            f"CPUID masked to {h['cpuid_mask']} (benchmarks/cpuid_mask.c): every library "
            "picks its kernels as on such a CPU; the flags above are what it sees"
        )
    print(f"precision auto -> {h['precision']}: {h['precision_reason']}")
    la, busy = h["loadavg"], h.get("cpu_busy", float("nan"))
    idle = busy < 0.1 if busy == busy else la[0] < 0.5
    print(
        f"torch {h['torch']}, {h['threads']} threads; cores busy before the start "
        f"{100 * busy:.0f}% (load average {la[0]:.2f}, which lags by minutes)"
        + ("" if idle else "  (NOT IDLE: figures not representative)")
    )


def load_scifact(scifact_dir: Path):
    """``(titled passages, untitled texts, queries, test qids)`` of a BEIR SciFact folder."""
    from cross_encoder.io import iter_corpus, read_qrels, read_queries

    docs = {pid: (title, text) for pid, title, text in iter_corpus(scifact_dir / "corpus.jsonl")}
    queries = read_queries(scifact_dir / "queries.jsonl")
    test = [q for q in read_qrels(scifact_dir / "qrels" / "test.tsv") if q in queries]
    return docs, queries, test


def cut_span(tokenizer, text: str, rng: random.Random, lo: int = 40, hi: int = 120) -> str:
    """Consecutive sentences of ``text`` from a random one, cut to ``lo..hi`` tokens (whole
    words); the whole text if it is shorter."""
    sents = re.split(r"(?<=[.!?])\s+", text)
    start = rng.randrange(len(sents))
    words = " ".join(sents[start:] + sents[:start]).split()
    if not words:
        return text
    counts = [len(x) for x in tokenizer(words, add_special_tokens=False)["input_ids"]]
    target = rng.randint(lo, hi)
    total, n = 0, 0
    for n, c in enumerate(counts, 1):  # noqa: B007
        if total + c > target:
            n -= 1
            break
        total += c
    return " ".join(words[: max(n, 1)])
