"""The report of ``benchmarks/gpu_check.sh``: pairs/s, peak memory and MFU of the ZeRO-2 and
DDP training runs and of predict, from the logs in ``--work``; also ``<work>/gpu_check.json``.

MFU (model FLOPs utilisation) = model FLOPs per pair x pairs/s / (GPUs x peak FLOP/s). Model
FLOPs per pair of ``s`` tokens, forward: ``2 P s`` for the dense layers (``P`` = parameters
outside the embedding tables) plus, per layer, ``4 s^2 h`` for the attention scores and
context, and for DeBERTa's disentangled attention ``8 s k h`` (content-to-position and
position-to-content scores over ``2k`` relative buckets; projecting the relative embeddings,
``4 (2k) h^2`` per layer, is done once per batch, not per pair, and left out). Training = 3 x
forward (backward = 2 x). ``s`` is the pair's useful
length (padding not counted): exact for predict (the ranking's pairs), for training the mean
over sampled (query, passage) pairs of the data, capped at ``--max_len``. The peak is the
GPU's dense fp16/bf16 tensor throughput from the table below (``--peak_tflops`` overrides).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

# Dense (no sparsity) fp16/bf16 tensor-core TFLOP/s per GPU, by a substring of its name;
# first match wins (specific names first). Data sheets of NVIDIA.
PEAK_TFLOPS = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200", 989.0),
    ("H100", 989.0),
    ("GH200", 989.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A6000", 155.0),
    ("A10", 125.0),
    ("V100", 125.0),
    ("T4", 65.0),
]
HALF = {"fp16", "bf16", "auto"}


def gpu_peak(name: str, precision: str) -> float | None:
    if precision not in HALF:
        return None
    for key, tflops in PEAK_TFLOPS:
        if key in name:
            return tflops * 1e12
    return None


def grep(path: Path, pattern: str) -> re.Match | None:
    found = None
    for line in path.read_text(errors="replace").splitlines():
        m = re.search(pattern, line)
        if m:
            found = m
    return found


def model_flops(model_dir: str):
    """(forward FLOPs of one pair of s tokens as a function, parameters, description)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(model_dir, num_labels=1)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    tables = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding)
    ) + sum(p.numel() for n, p in model.named_parameters() if n.endswith("rel_embeddings.weight"))
    dense = total - tables
    h, layers = config.hidden_size, config.num_hidden_layers
    rel = getattr(config, "relative_attention", False)
    buckets = getattr(config, "position_buckets", -1)
    span = buckets if buckets and buckets > 0 else getattr(config, "max_position_embeddings", 512)

    def forward(s: float) -> float:
        f = 2 * dense * s + layers * 4 * s * s * h
        if rel:
            f += layers * 8 * s * span * h
        return f

    what = f"{config.model_type}, {layers} x {h}, {total / 1e6:.1f}M parameters"
    return forward, total, what


def lengths(folder: Path) -> dict[str, int]:
    """Token count per id of a tokenized folder (any layout the package reads)."""
    from cross_encoder.io.collection import TokenizedCollection

    c = TokenizedCollection.load(folder)
    return {str(i): int(n) for i, n in zip(c.ids, c.lengths(), strict=True)}


def pair_len(q: int, p: int, max_len: int) -> int:
    return min(q + p + 3, max_len)  # [CLS] q [SEP] p [SEP], truncated


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--model", required=True)
    ap.add_argument("--nproc", type=int, required=True)
    ap.add_argument("--max_len", type=int, required=True)
    ap.add_argument("--precision", required=True)
    ap.add_argument("--peak_tflops", type=float, default=None, help="per GPU (overrides)")
    a = ap.parse_args(argv)

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    peak = a.peak_tflops * 1e12 if a.peak_tflops else gpu_peak(gpu, a.precision)
    forward, n_params, what = model_flops(a.model)

    pre = a.work / "pre"
    corpus = lengths(pre / "corpus")
    dev_q = lengths(pre / "dev_query")
    train_q = list(lengths(pre / "train_query").values())
    rng = random.Random(0)
    passages = list(corpus.values())
    train_s = [pair_len(rng.choice(train_q), rng.choice(passages), a.max_len) for _ in range(5000)]
    pred_s = []
    for line in (a.work / "dev.ranking.tsv").read_text().splitlines():
        qid, pid = line.split("\t")[:2]
        pred_s.append(pair_len(dev_q[qid], corpus[pid], a.max_len))
    train_flops = sum(3 * forward(s) for s in train_s) / len(train_s)
    pred_flops = sum(forward(s) for s in pred_s) / len(pred_s)

    print(f"model: {what}; precision {a.precision}; {a.nproc} x {gpu}")
    mean_train, mean_pred = sum(train_s) / len(train_s), sum(pred_s) / len(pred_s)
    print(
        f"model FLOPs per pair: train {train_flops / 1e9:.3f} GFLOP (mean {mean_train:.0f} "
        f"tokens), predict {pred_flops / 1e9:.3f} GFLOP (mean {mean_pred:.0f} tokens)"
    )
    summary = {"gpu": gpu, "nproc": a.nproc, "precision": a.precision, "model": what}
    rows = [
        ("train ZeRO-2", "train_zero2.log", r"train throughput: ([\d.]+) pairs/s", train_flops),
        ("train DDP", "train_ddp.log", r"train throughput: ([\d.]+) pairs/s", train_flops),
        ("predict", "predict.log", r"\(([\d.]+) pairs/s, all ranks\)", pred_flops),
    ]
    for label, log, pattern, flops in rows:
        path = a.work / log
        m = grep(path, pattern)
        if m is None:
            print(f"error: no throughput in {path}")
            return 1
        rate = float(m.group(1))
        mem = grep(path, r"peak GPU memory: ([\d.]+) GiB")
        achieved = rate * flops / a.nproc
        mfu = (
            f"MFU {100 * achieved / peak:.1f}%" if peak else "MFU n/a (no peak known: PEAK_TFLOPS)"
        )
        mem_s = f", peak {mem.group(1)} GiB/rank" if mem else ""
        print(
            f"{label}: {rate:.1f} pairs/s{mem_s}, {achieved / 1e12:.3f} model TFLOP/s per "
            f"process, {mfu}"
        )
        summary[label] = {
            "pairs_per_s": rate,
            "peak_gib": float(mem.group(1)) if mem else None,
            "tflops_per_process": achieved / 1e12,
            "mfu": achieved / peak if peak else None,
        }
    z, d = summary["train ZeRO-2"]["pairs_per_s"], summary["train DDP"]["pairs_per_s"]
    print(f"ZeRO-2 / DDP training throughput: {z / d:.2f}x")
    (a.work / "gpu_check.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
