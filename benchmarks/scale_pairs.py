"""Scale check of scoring (rerank / teacher scores): an MS MARCO-shaped synthetic set — a
million tokenized passages, 100k train queries with a top-200 ranking (20M pairs) — through
``cross_encoder.run --do_predict`` with a tiny 2-layer model (so that the model costs next to
nothing and what is measured is the pipeline around it), each run under ``/usr/bin/time -v``.

    python benchmarks/scale_pairs.py /tmp/scale_pairs                 # 2M, 5M, 20M pairs
    python benchmarks/scale_pairs.py /tmp/scale_pairs --sizes 200000  # a quick look
    python benchmarks/scale_pairs.py /tmp/scale_pairs --stages --sizes 2000000,20000000

Prints, per ranking size: wall time, peak RSS and pairs/s (whole job, and the scoring loop
alone as the job logs it); the work outside the model's forward timed on its own (reading the
ranking into row arrays, building and padding the length-sorted batches, writing the scores);
the same ranking scored as ``--shards`` shard jobs one after another, their total time and
whether the gathered file equals the one-job file byte for byte; and a linear fit of peak RSS
against pairs, extrapolated to the seed's teacher step (8.8M passages, 100M pairs).

``--stages``: every other step that reads a ranking or score file of that size, each the
real command in a process of its own under GNU time (peak RSS, wall): reading the ranking
(``iter_ranking``), hard negatives (``first_stage.negatives``, depth 200), the teacher
coverage check (``distillation.teacher check``, topk 200, group 16, over the scores of every
ranked pair and the positives'), reciprocal-rank fusion of two runs (``first_stage.fusion``),
the reranked/fused runs (``reranking.fusion --method rrf``), evaluation with significance
tests (``evaluate``, first stage vs scores), and the training groups (``TrainDataset`` from
the hard negatives, 10,000 groups of 16 drawn). ``--train_queries 500000`` adds the training
data of 500k queries x 200 negatives (100M negative ids).

Everything is written under the folder given (about 0.8 GB of ranking text for 20M pairs),
never into the repository. Needs GNU time (Debian: ``apt-get install time``).
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

VOCAB = 1000


def build_model(out: Path, hidden: int) -> Path:
    """A random 2-layer BERT cross-encoder (hidden size ``hidden``, 2 heads) with a 1,000-word
    WordPiece vocabulary."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "apple", "zebra"]
    (out / "vocab.txt").write_text("\n".join(specials + [f"w{i}" for i in range(VOCAB - 7)]))
    BertTokenizerFast(vocab_file=str(out / "vocab.txt")).save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=256,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(out, safe_serialization=True)
    return out


def write_collection(out: Path, prefix: str, n: int, mean: float, sd: float, lo, hi, rng):
    """A tokenized collection folder (preprocess's format) of random token ids."""
    from cross_encoder.io.collection import CollectionWriter

    writer = CollectionWriter(out)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        lengths = np.clip(np.rint(rng.normal(mean, sd, m)), lo, hi).astype(np.int64)
        flat = rng.integers(7, VOCAB, int(lengths.sum()), dtype=np.int32)
        ids = np.split(flat, np.cumsum(lengths)[:-1])
        writer.write([f"{prefix}{start + i}" for i in range(m)], [x.tolist() for x in ids])
    writer.close()


def write_rankings(out: Path, sizes: list[int], n_passages: int, topk: int, rng) -> list[Path]:
    """``ranking_<n>.tsv`` (``qid pid rank score``) for each size: the first n/topk queries of
    one ranking, topk passages each (random pids, as BM25's top-k would be)."""
    paths = [out / f"ranking_{n}.tsv" for n in sizes]
    files = [open(p, "w", encoding="utf-8") for p in paths]  # noqa: SIM115
    ranks = np.tile(np.arange(1, topk + 1), 500)
    scores = [f"{30 - 0.1 * r:.2f}" for r in range(1, topk + 1)] * 500
    try:
        for q0 in range(0, max(sizes) // topk, 500):
            pids = rng.integers(0, n_passages, 500 * topk)
            lines = [
                f"q{q0 + i // topk}\tp{p}\t{r}\t{s}\n"
                for i, (p, r, s) in enumerate(
                    zip(pids.tolist(), ranks.tolist(), scores, strict=False)
                )
            ]
            for n, f in zip(sizes, files, strict=True):
                room = n - q0 * topk
                if room > 0:
                    f.write("".join(lines[:room]))
    finally:
        for f in files:
            f.close()
    return paths


def timed(name: str, cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` under GNU time -v: wall seconds, CPU seconds, peak RSS (GB), and the
    job's own log lines about reading and scoring."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
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
        "cpu_s": round(cpu, 1),
        "peak_rss_gb": round(rss_kb / 1e6, 3),
    }
    read = re.search(r"read (\d+) pairs from .* in ([\d.]+) s", text)
    scored = re.search(r"scored (\d+) pairs in ([\d.]+) s", text)
    if read:
        result["read_s"] = float(read.group(2))
    if scored:
        result["pairs"] = int(scored.group(1))
        result["score_loop_s"] = float(scored.group(2))
    return result


def predict_cmd(work: Path, model: Path, ranking: Path, out: Path, *flags: str) -> list[str]:
    return [
        sys.executable, "-m", "cross_encoder.run", "--do_predict",
        "--model_name_or_path", str(model), "--output_dir", str(work / "run"),
        "--corpus_file", str(work / "corpus"), "--test_query_file", str(work / "train_query"),
        "--test_file", str(ranking), "--prediction_save_path", str(out),
        "--prediction_topk", "200", "--max_len", "200", "--precision", "fp32",
        "--report_to", "none", "--disable_tqdm", "true", *flags,
        # random token ids from a 1,000-id vocabulary: the tokenizer check cannot apply
        "--allow_tokenizer_mismatch",
    ]  # fmt: skip


def outside_forward(work: Path, model: Path, ranking: Path) -> dict:
    """pairs/s of each step around the forward, in this process: reading the ranking into
    row arrays; lengths, length sort and padding of every batch; writing the scores."""
    from transformers import AutoTokenizer

    from cross_encoder.io import atomic_write
    from cross_encoder.io.collection import TokenizedCollection
    from cross_encoder.reranking.predict import CHUNK_PAIRS, PairBuilder, make_batches
    from cross_encoder.reranking.rerank import ranking_rows, write_chunk
    from cross_encoder.training.dataset import PairTemplate

    corpus = TokenizedCollection.load(work / "corpus")
    queries = TokenizedCollection.load(work / "train_query")
    template = PairTemplate(AutoTokenizer.from_pretrained(model), 200)
    t0 = time.perf_counter()
    qrows, prows = ranking_rows(ranking, 200, queries, corpus)
    t1 = time.perf_counter()
    builder = PairBuilder(template, queries, corpus)
    for lo in range(0, len(qrows), CHUNK_PAIRS):
        qr, pr = qrows[lo : lo + CHUNK_PAIRS], prows[lo : lo + CHUNK_PAIRS]
        for b in make_batches(builder.lengths(qr, pr), 16384):
            builder.pad(qr[b], pr[b])
    t2 = time.perf_counter()
    scores = np.random.default_rng(0).normal(size=len(qrows)).astype(np.float32)
    with atomic_write(work / "outside_forward.scores.tsv") as f:
        for lo in range(0, len(qrows), CHUNK_PAIRS):
            hi = lo + CHUNK_PAIRS
            write_chunk(f, queries, corpus, qrows[lo:hi], prows[lo:hi], scores[lo:hi])
    t3 = time.perf_counter()
    (work / "outside_forward.scores.tsv").unlink()
    n = len(qrows)
    steps = {"read": t1 - t0, "batch_and_pad": t2 - t1, "write": t3 - t2}
    result = {f"{k}_pairs_per_s": round(n / v) for k, v in steps.items()}
    result["all_pairs_per_s"] = round(n / sum(steps.values()))
    result["pairs"] = n
    return result


def pipeline_only(work: Path, model: Path, sizes: list[int], rankings: dict) -> dict:
    """Each size through everything but the model (read, batch, pad, write; random scores),
    in a process of its own under GNU time: the memory of the pipeline at sizes where the
    tiny model's forward would take too long on the machine at hand."""
    out = {}
    print(f"{'pairs':>12} {'wall s':>8} {'peak RSS GB':>12} {'pairs/s':>9}  (no model)")
    for n in sizes:
        cmd = [sys.executable, __file__, str(work), "--_pipeline", str(rankings[n])]
        r = timed(f"{n}", cmd, work / f"pipeline_{n}.log")
        text = (work / f"pipeline_{n}.log").read_text()
        r.update(json.loads(re.search(r"^PIPELINE (.*)$", text, re.M).group(1)))
        out[n] = r
        print(f"{n:>12,} {r['wall_s']:>8.1f} {r['peak_rss_gb']:>12.3f} {r['all_pairs_per_s']:>9,}")
    return out


STAGES = ("read", "negatives", "teacher_check", "rrf", "rerank_fusion", "evaluate", "train_data")


def stage_inputs(work: Path, n: int) -> dict[str, Path]:
    """Files the stages read, derived from ``ranking_<n>.tsv`` (kept between runs): the
    cross-encoder's scores of every ranked pair (``qid pid score``), one positive per query
    (its rank-3 passage, so that hard negatives drop it) and the positives' scores."""
    f = {
        "ranking": work / f"ranking_{n}.tsv",
        "scores": work / f"scores_{n}.tsv",
        "qrels": work / f"qrels_{n}.tsv",
        "qrels_score": work / f"qrels_score_{n}.tsv",
        "negs": work / f"negs_{n}.tsv",
    }
    awk = {
        "scores": '{print $1 "\\t" $2 "\\t" sprintf("%.4f", (NR * 7919) % 10007 / 1000)}',
        "qrels": '$3 == 3 {print $1 "\\t0\\t" $2 "\\t1"}',
        "qrels_score": '$3 == 3 {print $1 "\\t" $2 "\\t1.5"}',
    }
    for key, prog in awk.items():
        if not f[key].exists():
            tmp = f[key].with_suffix(".part")
            with open(tmp, "w") as out:
                subprocess.run(["awk", "-F", "\t", prog, str(f["ranking"])], stdout=out, check=True)
            tmp.rename(f[key])
    return f


def stage_cmd(work: Path, stage: str, n: int, f: dict[str, Path]) -> list[str]:
    """The real command of ``stage`` on the inputs of size ``n`` (outputs under ``work``)."""
    py = [sys.executable, "-m"]
    o = work / "stage_out"
    o.mkdir(exist_ok=True)
    if stage == "negatives":
        return [*py, "cross_encoder.first_stage.negatives", "--ranking_file", str(f["ranking"]),
                "--qrels_file", str(f["qrels"]), "--output_file", str(f["negs"]),
                "--depth", "200"]  # fmt: skip
    if stage == "teacher_check":
        return [*py, "cross_encoder.distillation.teacher", "check", "--teacher_score_files",
                f"{f['qrels_score']},{f['scores']}", "--train_qrels", str(f["qrels"]),
                "--neg_file", str(f["negs"]), "--sample_neg_from_topk", "200",
                "--group_size", "16", "--report", str(o / f"check_{n}.json")]  # fmt: skip
    if stage == "rrf":
        return [*py, "cross_encoder.first_stage.fusion", "--ranking", str(f["ranking"]),
                "--ranking", str(f["scores"]), "--output_ranking", str(o / f"rrf_{n}.tsv"),
                "--depth", "1000"]  # fmt: skip
    if stage == "rerank_fusion":
        return [*py, "cross_encoder.reranking.fusion", "--scores", str(f["scores"]),
                "--ranking", str(f["ranking"]), "--output_full", str(o / f"full_{n}.tsv"),
                "--method", "rrf", "--output_fused", str(o / f"fused_{n}.tsv")]  # fmt: skip
    if stage == "evaluate":
        return [*py, "cross_encoder.evaluate", "--score_file", str(f["scores"]),
                "--qrels_file", str(f["qrels"]), "--first_stage_file", str(f["ranking"]),
                "--output_json", str(o / f"eval_{n}.json"), "--no_ranked_results"]  # fmt: skip
    # in a child of this script: reading the ranking; the training groups
    return [sys.executable, __file__, str(work), "--_stage", stage, str(n)]


def run_stage_in_process(work: Path, stage: str, n: int) -> None:
    """The stages that have no command of their own (the child of ``stages``)."""
    t = time.perf_counter()
    if stage == "read":
        from cross_encoder.io import iter_ranking

        pairs = sum(1 for _ in iter_ranking(work / f"ranking_{n}.tsv"))
        print(f"STAGE read {pairs} pairs in {time.perf_counter() - t:.1f} s")
        return
    from types import SimpleNamespace

    from cross_encoder.io.collection import TokenizedCollection
    from cross_encoder.training.dataset import load_training_data

    train = n < 0  # the 500k-query training data of --train_queries
    n = abs(n)
    f = train_inputs(work, n) if train else stage_inputs(work, n)
    corpus = TokenizedCollection.load(work / "corpus")
    t = time.perf_counter()
    args = SimpleNamespace(
        train_query_file=str(work / ("train_query_big" if train else "train_query")),
        train_query_id_file=None, train_qrels=str(f["qrels"]), neg_file=str(f["negs"]),
        train_group_size=16, sample_neg_from_topk=200, sample_neg_skip_topk=0,
        random_negatives=0,
    )  # fmt: skip
    dataset = load_training_data(args, 42, corpus)
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(dataset), max(1, len(dataset) // 10_000)):
        dataset[i]
    print(
        f"STAGE train_data {len(dataset)} queries loaded in {t_load:.1f} s, "
        f"10,000 groups in {time.perf_counter() - t:.1f} s"
    )


def train_inputs(work: Path, n_queries: int) -> dict[str, Path]:
    """Training data of ``n_queries`` queries x 200 hard negatives (a neg_file of
    ``n_queries * 200`` ids), one positive each, and the tokenized queries."""
    rng = np.random.default_rng(1)
    f = {
        "qrels": work / f"train_qrels_{n_queries}.tsv",
        "negs": work / f"train_negs_{n_queries}.tsv",
    }
    if not (work / "train_query_big" / "mapping_id.txt").exists():
        write_collection(work / "train_query_big", "q", n_queries, 9, 3, 2, 30, rng)
    if not f["negs"].exists():
        n_passages = len((work / "corpus" / "mapping_id.txt").read_text().splitlines())
        with open(f["qrels"], "w") as qf, open(f["negs"].with_suffix(".part"), "w") as nf:
            for q0 in range(0, n_queries, 10_000):
                pids = rng.integers(0, n_passages, (min(10_000, n_queries - q0), 201))
                for i, row in enumerate(pids.tolist()):
                    qf.write(f"q{q0 + i}\t0\tp{row[0]}\t1\n")
                    nf.write(f"q{q0 + i}\t" + ",".join(f"p{p}" for p in row[1:]) + "\n")
        f["negs"].with_suffix(".part").rename(f["negs"])
    return f


def stages(work: Path, sizes: list[int], names: list[str], train_queries: int | None) -> dict:
    """Each stage at each size, in a process of its own under GNU time."""
    out: dict = {}
    print(f"{'stage':<14} {'pairs':>12} {'wall s':>8} {'peak RSS GB':>12} {'B/pair':>7}")
    runs = [(s, n) for n in sizes for s in names]
    if train_queries:
        train_inputs(work, train_queries)
        runs.append(("train_data", -train_queries))
    for stage, n in runs:
        f = stage_inputs(work, n) if n > 0 else {}
        cmd = stage_cmd(work, stage, n, f)
        log = work / f"stage_{stage}_{n}.log"
        r = timed(f"{stage} {n}", cmd, log)
        pairs = n if n > 0 else -n * 200
        r["pairs"] = pairs
        r["bytes_per_pair"] = round(r["peak_rss_gb"] * 1e9 / pairs, 1)
        line = re.search(r"^STAGE (.*)$", log.read_text(), re.M)
        if line:
            r["note"] = line.group(1)
        out[f"{stage} {pairs}"] = r
        label = stage if n > 0 else f"train_data ({-n:,} q x 200)"
        print(
            f"{label:<14} {pairs:>12,} {r['wall_s']:>8.1f} {r['peak_rss_gb']:>12.3f} "
            f"{r['bytes_per_pair']:>7.1f}" + (f"  {r['note']}" if "note" in r else "")
        )
    return out


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[2] == "--_pipeline":  # the child of pipeline_only
        work = Path(sys.argv[1])
        result = outside_forward(work, work / "model", Path(sys.argv[3]))
        print("PIPELINE " + json.dumps(result))
        return
    if len(sys.argv) == 5 and sys.argv[2] == "--_stage":  # the child of stages
        run_stage_in_process(Path(sys.argv[1]), sys.argv[3], int(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workdir", type=Path, help="a scratch folder outside the repository")
    p.add_argument("--passages", type=int, default=1_000_000)
    p.add_argument("--topk", type=int, default=200)
    p.add_argument("--sizes", default="2000000,5000000,20000000", help="pairs per ranking")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument(
        "--chunk_pairs",
        type=int,
        default=None,
        help="--prediction_chunk_pairs of every scoring job (shards split chunks: use a few "
        "chunks per shard); default: cross_encoder.run's",
    )
    p.add_argument("--shard_size", type=int, default=None, help="default: the largest size")
    p.add_argument("--outside_size", type=int, default=None, help="default: the smallest size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=8, help="the tiny model's hidden size")
    p.add_argument("--skip_outside", action="store_true", help="skip the outside-forward timing")
    p.add_argument(
        "--pipeline_only",
        action="store_true",
        help="each size through everything but the model's forward, in its own process",
    )
    p.add_argument(
        "--stages",
        nargs="?",
        const=",".join(STAGES),
        default=None,
        help=f"the other steps at each size instead of scoring (comma-separated; {STAGES})",
    )
    p.add_argument(
        "--train_queries", type=int, default=None, help="with --stages: also N queries x 200"
    )
    args = p.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    n_queries = max(sizes) // args.topk
    print(f"data: {args.passages:,} passages, {n_queries:,} queries x top-{args.topk}")
    t = time.perf_counter()
    model = build_model(work / "model", args.hidden)
    if not (work / "corpus" / "mapping_id.txt").exists():  # data of an earlier run are kept
        # MS MARCO passages: ~75 BERT tokens (mean), queries ~9
        write_collection(work / "corpus", "p", args.passages, 75, 25, 8, 200, rng)
        write_collection(work / "train_query", "q", max(n_queries, 100_000), 9, 3, 2, 30, rng)
    missing = [n for n in sizes if not (work / f"ranking_{n}.tsv").exists()]
    if missing:
        write_rankings(work, missing, args.passages, args.topk, np.random.default_rng(args.seed))
    rankings = {n: work / f"ranking_{n}.tsv" for n in sizes}
    print(f"generated in {time.perf_counter() - t:.0f} s")
    results: dict = {"sizes": {}}
    if args.stages:
        names = [x for x in args.stages.split(",") if x]
        if set(names) - set(STAGES):
            sys.exit(f"unknown stages: {sorted(set(names) - set(STAGES))}; known: {STAGES}")
        results["stages"] = stages(work, sizes, names, args.train_queries)
        out = work / f"stages_{'_'.join(map(str, sizes))}.json"
        out.write_text(json.dumps(results, indent=2))
        print(f"results: {out}")
        return
    if args.pipeline_only:
        results["pipeline_only"] = pipeline_only(work, model, sizes, rankings)
        out = work / f"pipeline_{'_'.join(map(str, sizes))}.json"
        out.write_text(json.dumps(results, indent=2))
        print(f"results: {out}")
        return
    load = timed(
        "load collections",
        [
            sys.executable,
            "-c",
            "import sys; from cross_encoder.io.collection import "
            "TokenizedCollection as T; T.load(sys.argv[1]); T.load(sys.argv[2])",
            str(work / "corpus"),
            str(work / "train_query"),
        ],
        work / "load.log",
    )
    results["load_collections"] = load
    chunk = ["--prediction_chunk_pairs", str(args.chunk_pairs)] if args.chunk_pairs else []
    print(f"collections alone: {load['peak_rss_gb']:.2f} GB peak RSS")
    print(
        f"{'pairs':>12} {'wall s':>8} {'peak RSS GB':>12} {'pairs/s job':>12} "
        f"{'pairs/s loop':>13} {'read s':>7}"
    )
    for n in sizes:
        r = timed(
            f"{n}",
            predict_cmd(work, model, rankings[n], work / f"predicted_{n}.tsv", *chunk),
            work / f"predict_{n}.log",
        )
        r["pairs_per_s_job"] = round(n / r["wall_s"])
        r["pairs_per_s_loop"] = round(n / r["score_loop_s"])
        results["sizes"][n] = r
        print(
            f"{n:>12,} {r['wall_s']:>8.1f} {r['peak_rss_gb']:>12.3f} "
            f"{r['pairs_per_s_job']:>12,} {r['pairs_per_s_loop']:>13,} {r['read_s']:>7.1f}"
        )
    # peak RSS against pairs: the slope is what a pair costs
    xs = np.array(sizes, dtype=float)
    ys = np.array([results["sizes"][n]["peak_rss_gb"] for n in sizes])
    if len(sizes) > 1:
        slope, icpt = np.polyfit(xs, ys, 1)
        results["rss_fit"] = {"gb_at_0": round(icpt, 3), "bytes_per_pair": round(slope * 1e9, 2)}
        print(f"peak RSS = {icpt:.3f} GB + {slope * 1e9:.2f} bytes/pair x pairs")
    # the work around the forward, on its own
    if not args.skip_outside:
        o = outside_forward(work, model, rankings[args.outside_size or sizes[0]])
        results["outside_forward"] = o
        print("outside the forward (pairs/s): " + ", ".join(f"{k} {v:,}" for k, v in o.items()))
    # shards one after another, gathered; against the one-job file
    m = args.shard_size or sizes[-1]
    if args.shards > 1 and m in rankings:
        t = time.perf_counter()
        parts = []
        for i in range(1, args.shards + 1):
            part = work / f"shard_{m}.{i}-of-{args.shards}.tsv"
            timed(
                f"shard {i}",
                predict_cmd(
                    work,
                    model,
                    rankings[m],
                    part,
                    "--prediction_shard",
                    f"{i}/{args.shards}",
                    *chunk,
                ),
                work / f"shard_{i}.log",
            )
            parts.append(part)
        gathered = work / f"gathered_{m}.tsv"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cross_encoder.reranking.shards",
                "--output",
                str(gathered),
                *map(str, parts),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        total = time.perf_counter() - t
        same = (
            subprocess.run(
                ["cmp", "-s", str(gathered), str(work / f"predicted_{m}.tsv")]
            ).returncode
            == 0
        )
        results["shards"] = {
            "pairs": m,
            "shards": args.shards,
            "total_s": round(total, 1),
            "identical": same,
        }
        print(
            f"{args.shards} shards of {m:,} pairs one after another + gather: {total:.1f} s "
            f"(one job {results['sizes'][m]['wall_s']:.1f} s); gathered file identical: {same}"
        )
    out = work / f"results_{'_'.join(map(str, sizes))}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
