"""Static int8 reranking that proves itself on the run's own dev set (``rerank.quantize``,
``run --quantize``).

After training, the model's encoder is converted to OpenVINO and quantized to int8 by NNCF's
post-training quantization (``model_type=TRANSFORMER``: its transformer preset), calibrated on
a seeded sample of the run's own train pairs (positives and hard negatives; the dev pairs when
no train files are given). Then the dev top-k (a fixed seeded sample of judged dev queries) is
scored twice, by the int8 model and by the full-precision path the run would otherwise use
(``--backend`` at ``--precision``), and int8 is **accepted** only if

* the dev selection metric drops by at most ``--quantize_max_metric_drop`` (0.005), and
* the mean per-query Spearman correlation with the full-precision scores is at least
  ``--quantize_min_spearman`` (0.99).

``--quantize int8`` uses the int8 model where accepted; ``auto`` only where it is also faster
here, by a short timing of both paths cached per machine like the precision probe
(:mod:`cross_encoder.hardware`: ``<cache>/int8_speed.json``). Otherwise the full-precision
path runs. One log line says which and why; the decision and its figures go to
``quantization.json`` (the workflow's ``rerank/quantization.json``), the accepted model to the
folder beside it (``int8/``: ``openvino_model.xml/.bin`` + ``score_head.json``), read by
:func:`load_int8` (also the entry point for serving). A rejected model is not written.

The decision is keyed by the model's weights and the guard's settings: a rerun with the same
model and settings reuses it (no re-calibration); in the workflow Snakemake also sees the
model, the calibration and dev files and the thresholds as the ``quantize`` rule's inputs and
params. The score head (the classifier's last linear layer) stays out of the quantized graph
and runs in float32, as in :mod:`cross_encoder.reranking.openvino`.

Optional: the ``openvino`` extra (OpenVINO and NNCF).

    python -m cross_encoder.reranking.quantize <cross_encoder.run's flags> --quantize auto
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cross_encoder.io import InputError, cli

logger = logging.getLogger(__name__)

MODES = ("none", "int8", "auto")
INSTALL_HINT = "pip install 'cross-encoder-rerank[openvino]'"
INT8_XML = "openvino_model.xml"
HEAD_FILE = "score_head.json"
DECISION_VERSION = 1
SPEED_CACHE = "int8_speed.json"
PROBE_PAIRS = 256  # pairs timed per path by the speed probe (a few seconds on 2 cores)
CALIBRATION_NEGATIVES = 3  # hard negatives per sampled train query, besides its positive


def missing_extra() -> str | None:
    """A one-line reason when OpenVINO or NNCF cannot be imported, else None."""
    import importlib.util

    missing = [m for m in ("openvino", "nncf") if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return f"int8 reranking needs {' and '.join(missing)} (the openvino extra): {INSTALL_HINT}"


# --------------------------------------------------------------------------- the int8 model


def quantize_encoder(model, template, calibration: Sequence[dict], seed: int = 42):
    """``(int8 ov_model, head, names)``: ``model``'s encoder (score head left out) converted to
    OpenVINO and statically quantized by NNCF with its transformer preset, calibrated on
    ``calibration`` (padded batches as :meth:`PairTemplate.pad` makes them, one pair each)."""
    import nncf

    from cross_encoder.reranking import openvino as ov_backend

    random.seed(seed)
    np.random.seed(seed)
    ov_model, head, names = ov_backend.convert_model(model, template)
    items = [{k: b[k].numpy() for k in names} for b in calibration]
    quantized = nncf.quantize(
        ov_model,
        nncf.Dataset(items),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(items),
    )
    return quantized, head, names


def save_int8(folder: str | os.PathLike, ov_model, head, names: Sequence[str]) -> None:
    """Write the int8 model atomically: ``openvino_model.xml/.bin`` + ``score_head.json``."""
    from cross_encoder.io import atomic_dir
    from cross_encoder.reranking.openvino import import_openvino

    ov = import_openvino()
    head_json = {"input_names": list(names), "weight": None, "bias": None}
    if head is not None:
        head_json["weight"] = [float(x) for x in head.weight.detach().float().reshape(-1)]
        head_json["bias"] = 0.0 if head.bias is None else float(head.bias.detach().float()[0])
    with atomic_dir(folder) as tmp:
        ov.save_model(ov_model, str(tmp / INT8_XML), compress_to_fp16=False)
        (tmp / HEAD_FILE).write_text(json.dumps(head_json) + "\n", encoding="utf-8")


def load_int8(
    folder: str | os.PathLike,
    precision: str | None = None,
    threads: int | None = None,
    hint: str = "LATENCY",
):
    """The accepted int8 model of ``folder`` (``quantization.json``'s ``int8_dir``), compiled
    for this CPU: an :class:`~cross_encoder.reranking.openvino.OpenVINOScorer`
    (``scorer(template.pad(pairs)) -> float32 scores``). ``precision``: the inference
    precision of the layers that stay in floating point (default: this package's CPU choice,
    bf16 where AMX is confirmed by timing, else fp32). ``hint``: ``LATENCY`` (a server's one
    batch at a time) or ``THROUGHPUT`` (reranking a file: see
    :func:`cross_encoder.reranking.openvino.compile_converted`)."""
    import torch

    from cross_encoder import hardware
    from cross_encoder.reranking.openvino import compile_converted, import_openvino

    folder = Path(folder)
    xml = folder / INT8_XML
    if not xml.is_file():
        raise InputError(folder, f"no int8 model here ({INT8_XML} missing)")
    spec = json.loads((folder / HEAD_FILE).read_text(encoding="utf-8"))
    head = None
    if spec.get("weight") is not None:
        w = torch.tensor(spec["weight"], dtype=torch.float32)
        head = torch.nn.Linear(len(w), 1)
        with torch.no_grad():
            head.weight.copy_(w[None])
            head.bias.fill_(spec["bias"])
    ov = import_openvino()
    ov_model = ov.Core().read_model(str(xml))
    precision = precision or hardware.resolve("auto", "cpu", log=False)
    return compile_converted(ov_model, head, spec["input_names"], precision, threads, hint=hint)


# --------------------------------------------------------------------------- the guard


def per_query_spearman(
    pairs: Sequence[tuple[str, str]], ref: np.ndarray, other: np.ndarray
) -> dict[str, float]:
    """Spearman's rho of ``other`` against ``ref`` per query (queries with one pair skipped;
    two constant rankings agree, one constant ranking against a varying one scores 0)."""
    from scipy.stats import spearmanr

    by_q: dict[str, list[int]] = {}
    for i, (q, _) in enumerate(pairs):
        by_q.setdefault(q, []).append(i)
    out = {}
    for q, ix in by_q.items():
        if len(ix) < 2:
            continue
        a, b = np.asarray(ref)[ix], np.asarray(other)[ix]
        flat_a, flat_b = np.all(a == a[0]), np.all(b == b[0])
        if flat_a or flat_b:
            out[q] = 1.0 if flat_a and flat_b else 0.0
        else:
            out[q] = float(spearmanr(a, b).statistic)
    return out


def dev_metrics(evaluator, scores: np.ndarray) -> dict[str, float]:
    """``evaluator``'s metrics (a :class:`RerankEvaluator`) of given scores of its pairs."""
    from cross_encoder.evaluation.metrics import mean, per_query
    from cross_encoder.reranking.fusion import full_run

    by_query: dict[str, dict[str, float]] = {}
    for (q, p), s in zip(evaluator.pairs, scores, strict=True):
        by_query.setdefault(q, {})[p] = float(s)
    run = {q: [p for p, _ in v] for q, v in full_run(by_query, evaluator.ranking).items()}
    return mean(per_query(evaluator.qrels, run, evaluator.metrics))


def judge(
    metric: str,
    full: dict[str, float],
    int8: dict[str, float],
    rho: dict[str, float],
    max_drop: float,
    min_spearman: float,
) -> tuple[bool, str, dict]:
    """``(accepted, reason, figures)`` of the two thresholds."""
    drop = float(full[metric] - int8[metric])
    mean_rho = float(np.mean(list(rho.values()))) if rho else 1.0
    figures = {
        "metric": metric,
        "full_precision": {k: round(v, 6) for k, v in full.items()},
        "int8": {k: round(v, 6) for k, v in int8.items()},
        "metric_drop": round(drop, 6),
        "mean_spearman": round(mean_rho, 6),
        "min_spearman_query": round(min(rho.values()), 6) if rho else None,
        "max_metric_drop": max_drop,
        "min_spearman": min_spearman,
    }
    fails = []
    if drop > max_drop + 1e-12:
        fails.append(f"dev {metric} drops {drop:.4f} > {max_drop}")
    if mean_rho < min_spearman:
        fails.append(f"mean per-query Spearman {mean_rho:.4f} < {min_spearman}")
    if fails:
        return False, "; ".join(fails), figures
    return (
        True,
        f"dev {metric} {full[metric]:.4f} -> {int8[metric]:.4f} (drop {drop:.4f} <= {max_drop}), "
        f"mean per-query Spearman {mean_rho:.4f} >= {min_spearman}",
        figures,
    )


# --------------------------------------------------------------------------- inputs


def calibration_pairs(data_args, corpus, dev_pairs, n: int, seed: int):
    """``(pairs, queries, source)``: ``n`` pairs of the run's own data, seeded: sampled train
    queries' positive + :data:`CALIBRATION_NEGATIVES` hard negatives when the train files are
    given (--train_query_file, --neg_file), else a sample of the dev pairs."""
    from cross_encoder.io import read_neg_file, read_positives
    from cross_encoder.io.collection import TokenizedCollection

    rng = random.Random(seed)
    if data_args.train_query_file and data_args.neg_file:
        queries = TokenizedCollection.load(
            data_args.train_query_file, data_args.train_query_id_file
        )
        negs = read_neg_file(data_args.neg_file)
        pos = read_positives(data_args.train_qrels) if data_args.train_qrels else {}
        qids = sorted(q for q in negs if q in queries)
        rng.shuffle(qids)
        pairs: list[tuple[str, str]] = []
        for q in qids:
            cand = [p for p in pos.get(q, [])[:1] + negs[q][:CALIBRATION_NEGATIVES] if p in corpus]
            pairs.extend((q, p) for p in cand)
            if len(pairs) >= n:
                break
        if pairs:
            return pairs[:n], queries, "train"
    picked = sorted(rng.sample(range(len(dev_pairs)), min(n, len(dev_pairs))))
    return [dev_pairs[i] for i in picked], None, "dev"


def fingerprint(model_dir: str | os.PathLike) -> str:
    """sha256 of a model folder's config and weight files (its name where it is no folder)."""
    folder = Path(model_dir)
    h = hashlib.sha256()
    if not folder.is_dir():
        h.update(str(model_dir).encode())
        return h.hexdigest()
    for f in sorted(folder.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".json") and f.name != "trainer_state.json":
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def decision_key(model_args, data_args, training_args) -> str:
    """What the decision depends on besides the data files (Snakemake's business): the
    model's weights, the thresholds, the calibration and dev-sample settings and the seed
    (not the depth or length scored: teacher scores reuse rerank's decision)."""
    parts = {
        "v": DECISION_VERSION,
        "model": fingerprint(_model_ref(model_args, training_args)),
        "max_drop": training_args.quantize_max_metric_drop,
        "min_spearman": training_args.quantize_min_spearman,
        "calibration_pairs": training_args.quantize_calibration_pairs,
        "max_queries": training_args.quantize_max_queries,
        "seed": training_args.seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _model_ref(model_args, training_args) -> str:
    """The folder of the model that reranks: the trained one under --do_train."""
    if training_args.do_train:
        return training_args.final_model_dir or training_args.output_dir
    return model_args.model_name_or_path


def decision_path(training_args) -> Path:
    return Path(
        training_args.quantization_file
        or os.path.join(training_args.output_dir, "quantization.json")
    )


# --------------------------------------------------------------------------- full precision


def full_precision_scorer(model, training_args, template) -> tuple[Callable, str]:
    """``(score(queries, corpus, pairs) -> scores, description)``: the path rerank runs
    without int8 (``--backend`` at the precision ``--precision`` resolved to on this CPU)."""
    import torch

    from cross_encoder.reranking import openvino as ov_backend
    from cross_encoder.reranking.predict import cast_for_inference, score_pairs

    budget = {
        "max_tokens": training_args.prediction_batch_tokens,
        "max_pairs": training_args.prediction_batch_pairs,
    }
    precision = "bf16" if training_args.bf16 else "fp32"
    if training_args.backend == "openvino":
        scorer = ov_backend.compile_model(
            model.cpu(), template, precision=precision, hint="THROUGHPUT"
        )

        def score(queries, corpus, pairs):
            return ov_backend.score_pairs(
                scorer, template, queries, corpus, pairs, **budget, progress=False
            )

        return score, f"OpenVINO {scorer.precision}"
    model.cpu().eval()
    if precision == "bf16":
        cast_for_inference(model, torch.bfloat16)

    def score(queries, corpus, pairs):
        return score_pairs(
            model, template, queries, corpus, pairs, **budget, device="cpu", progress=False
        )

    return score, f"torch {precision}"


def int8_score_fn(scorer, template, training_args) -> Callable:
    from cross_encoder.reranking import openvino as ov_backend

    def score(queries, corpus, pairs):
        return ov_backend.score_pairs(
            scorer,
            template,
            queries,
            corpus,
            pairs,
            max_tokens=training_args.prediction_batch_tokens,
            max_pairs=training_args.prediction_batch_pairs,
            progress=False,
        )

    return score


def full_precision_name(training_args) -> str:
    """``torch bf16``, ``openvino fp32``...: the full-precision path on this CPU."""
    return f"{training_args.backend} {'bf16' if training_args.bf16 else 'fp32'}"


def length_bucket(template, queries, corpus, pairs: Sequence[tuple[str, str]]) -> int:
    """The probe's pair length class: the mean token length of the first
    :data:`PROBE_PAIRS` pairs, rounded up to a power of two (int8's gain depends on it: the
    share of the GEMMs grows with length)."""
    sample = pairs[:PROBE_PAIRS]
    if not sample:
        return 0
    mean = np.mean([len(template.build(queries.tokens(q), corpus.tokens(p))[0]) for q, p in sample])
    return int(2 ** np.ceil(np.log2(max(mean, 1.0))))


def _speed_key(model, template, full_desc: str, bucket: int = 0) -> str:
    from cross_encoder import hardware
    from cross_encoder.modeling.cls_only import supported as first_token_supported
    from cross_encoder.reranking.openvino import import_openvino

    cfg = getattr(model, "config", None)
    arch = {
        k: getattr(cfg, k, None)
        for k in ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size")
    }
    parts = {
        "machine": hardware.cache_key(),
        "openvino": import_openvino().get_version(),
        "arch": arch,
        "max_len": template.max_len,
        "full": full_desc,
        # the graph both paths run: the last layer for [CLS] only (modeling.cls_only)
        "graph": "first_token_only" if first_token_supported(model) else "whole",
    }
    if bucket:  # keys without it: decisions of DECISION_VERSION 1 runs
        parts["length_bucket"] = bucket
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def speed_probe(
    int8_score: Callable,
    make_full_score: Callable[[], Callable],
    queries,
    corpus,
    pairs: Sequence[tuple[str, str]],
    key: str,
    use_cache: bool = True,
    cache_file: str = SPEED_CACHE,
    labels: tuple[str, str] = ("int8", "full"),
) -> dict:
    """``{"int8_pairs_per_s", "full_pairs_per_s", "speedup", "cached"}``: the best of two
    interleaved timings of :data:`PROBE_PAIRS` pairs per path (after a warm-up), cached per
    machine, OpenVINO version, model shape, full-precision path and pair-length class
    (:func:`length_bucket`) in ``<cache>/int8_speed.json``
    (the cache of :mod:`cross_encoder.hardware`; a file lock makes concurrent jobs agree)."""
    import contextlib

    from cross_encoder import hardware

    path = hardware.cache_dir() / cache_file
    lock = hardware._locked(path.with_name(path.name + ".lock")) if use_cache else None
    with lock or contextlib.nullcontext():
        if use_cache:
            hit = hardware._read_cache(path).get(key)
            if isinstance(hit, dict) and "speedup" in hit:
                return {**hit, "cached": True}
        full_score = make_full_score()
        sample = list(pairs[:PROBE_PAIRS])
        warm = sample[: min(16, len(sample))]
        int8_score(queries, corpus, warm)
        full_score(queries, corpus, warm)
        best = {"int8": float("inf"), "full": float("inf")}
        for _ in range(2):
            for name, fn in (("int8", int8_score), ("full", full_score)):
                t = time.perf_counter()
                fn(queries, corpus, sample)
                best[name] = min(best[name], time.perf_counter() - t)
        n = len(sample)
        result = {
            f"{labels[0]}_pairs_per_s": round(n / best["int8"], 2),
            f"{labels[1]}_pairs_per_s": round(n / best["full"], 2),
            "speedup": round(best["full"] / best["int8"], 3),
            "pairs": n,
            "cpu": hardware.describe_cpu(),
        }
        if use_cache:
            data = hardware._read_cache(path)
            data[key] = result
            hardware._write_cache(path, data)
        return {**result, "cached": False}


# --------------------------------------------------------------------------- the decision


def build_decision(model, model_args, data_args, training_args, template) -> dict:
    """Quantize, guard on dev, time; write ``quantization.json`` (and ``int8/`` when
    accepted) atomically; return the decision. ``model``: float32, on the CPU."""
    from cross_encoder.io import require_path, write_json
    from cross_encoder.io.collection import TokenizedCollection
    from cross_encoder.reranking.evaluator import RerankEvaluator

    mode = training_args.quantize
    out = decision_path(training_args)
    int8_dir = out.parent / "int8"
    base = {
        "version": DECISION_VERSION,
        "mode": mode,
        "key": decision_key(model_args, data_args, training_args),
        "model": str(_model_ref(model_args, training_args)),
    }
    why = "with --quantize (the dev set that guards int8)"
    corpus = TokenizedCollection.load(
        require_path(data_args.corpus_file, "--corpus_file", why), data_args.corpus_id_file
    )
    dev_queries = TokenizedCollection.load(
        require_path(data_args.eval_query_file, "--eval_query_file", why),
        data_args.eval_query_id_file,
    )
    metrics = [m.strip() for m in data_args.eval_metrics.split(",") if m.strip()]
    metric = (training_args.metric_for_best_model or metrics[0]).removeprefix("eval_")
    if metric in ("loss",):
        metric = metrics[0]
    if metric not in metrics:
        metrics = [metric, *metrics]
    evaluator = RerankEvaluator(
        dev_queries,
        corpus,
        require_path(data_args.eval_file, "--eval_file", why),
        require_path(data_args.eval_qrels, "--eval_qrels", why),
        template,
        topk=data_args.prediction_topk,
        metrics=metrics,
        max_queries=training_args.quantize_max_queries,
        seed=training_args.seed,
    )
    n_cal = training_args.quantize_calibration_pairs
    cal_pairs, cal_queries, cal_source = calibration_pairs(
        data_args, corpus, evaluator.pairs, n_cal, training_args.seed
    )
    cal_queries = cal_queries or dev_queries
    calibration = [
        template.pad([template.build(cal_queries.tokens(q), corpus.tokens(p))])
        for q, p in cal_pairs
    ]
    start = time.perf_counter()
    ov_int8, head, names = quantize_encoder(model, template, calibration, training_args.seed)
    quantize_s = time.perf_counter() - start
    from cross_encoder.reranking.openvino import compile_converted

    precision = "bf16" if training_args.bf16 else "fp32"
    int8_scorer = compile_converted(ov_int8, head, names, precision, hint="THROUGHPUT")
    int8_score = int8_score_fn(int8_scorer, template, training_args)
    full_score, full_desc = full_precision_scorer(model, training_args, template)
    t = time.perf_counter()
    ref = full_score(dev_queries, corpus, evaluator.pairs)
    full_s = time.perf_counter() - t
    t = time.perf_counter()
    got = int8_score(dev_queries, corpus, evaluator.pairs)
    int8_s = time.perf_counter() - t
    rho = per_query_spearman(evaluator.pairs, ref, got)
    accepted, reason, figures = judge(
        metric,
        dev_metrics(evaluator, ref),
        dev_metrics(evaluator, got),
        rho,
        training_args.quantize_max_metric_drop,
        training_args.quantize_min_spearman,
    )
    bucket = length_bucket(template, dev_queries, corpus, evaluator.pairs)
    speed = speed_probe(
        int8_score,
        lambda: full_score,
        dev_queries,
        corpus,
        evaluator.pairs,
        _speed_key(model, template, full_precision_name(training_args), bucket),
    )
    decision = {
        **base,
        "accepted": accepted,
        "reason": reason,
        **figures,
        "full_precision_path": full_desc,
        "int8_inference_precision": int8_scorer.precision,
        "dev_queries": len(evaluator.qrels),
        "dev_pairs": len(evaluator.pairs),
        "calibration": {"source": cal_source, "pairs": len(cal_pairs), "seed": training_args.seed},
        "seconds": {
            "quantize": round(quantize_s, 2),
            "score_full": round(full_s, 2),
            "score_int8": round(int8_s, 2),
        },
        "speed": {**{k: v for k, v in speed.items() if k != "cached"}, "length_bucket": bucket},
        "int8_dir": "int8" if accepted else None,
        "versions": _versions(),
    }
    if accepted:
        save_int8(int8_dir, ov_int8, head, names)
    else:  # nothing of a rejected model stays behind
        import shutil

        shutil.rmtree(int8_dir, ignore_errors=True)
    write_json(out, decision)
    return decision


def _versions() -> dict:
    import nncf

    from cross_encoder.reranking.openvino import import_openvino

    return {"openvino": import_openvino().get_version(), "nncf": nncf.__version__}


def choose(decision: dict, mode: str, speed: dict | None) -> tuple[bool, str]:
    """``(use_int8, why)`` for ``mode`` given a decision and (for auto) the speed probe."""
    if not decision.get("accepted"):
        return False, f"int8 rejected on dev: {decision.get('reason')}; full precision"
    if mode == "int8":
        return True, f"int8 accepted on dev: {decision['reason']}"
    if speed is None or speed["speedup"] <= 1.0:
        got = "not measured" if speed is None else f"only {speed['speedup']:.2f}x"
        return False, f"int8 accepted on dev but {got} full precision here; full precision"
    cached = " (cached)" if speed.get("cached") else ""
    return True, (
        f"int8 accepted on dev ({decision['reason']}) and {speed['speedup']:.2f}x "
        f"full precision here{cached}"
    )


def scorer_for_predict(model, model_args, data_args, training_args, template, probe=None):
    """``(compiled scorer or None, path)`` for rerank under ``--quantize``: ``path`` is
    ``int8`` (the accepted int8 model), else the full-precision backend (``torch`` or
    ``openvino``; under ``auto`` the faster one here, :func:`full_precision_backend`), with its
    compiled OpenVINO model when the probe built one. Logs one line saying which and why.
    Reuses ``quantization.json`` when its key matches (the workflow's ``quantize`` rule wrote
    it), else builds it (needs the ``--eval_*`` dev files). ``probe``: ``(queries, corpus,
    pairs)`` the speed probes time, when the caller has them loaded (:func:`_probe_pairs`)."""
    mode = getattr(training_args, "quantize", "none")
    backend = training_args.backend
    if mode == "none":
        return None, backend
    if training_args.device.type != "cpu":
        logger.info("quantize %s -> full precision: int8 is a CPU path (device %s)", mode,
                    training_args.device)  # fmt: skip
        return None, backend
    missing = missing_extra()
    if missing:
        if mode == "int8":
            raise InputError(None, f"--quantize int8: {missing}")
        logger.warning("quantize auto -> full precision: %s", missing)
        return None, backend
    decision = load_decision(model_args, data_args, training_args)
    if decision is None:
        if not data_args.eval_file:
            if mode == "int8":
                raise InputError(
                    None,
                    "--quantize int8 needs --eval_query_file/--eval_file/--eval_qrels (the dev "
                    "set that guards int8) or an existing --quantization_file",
                )
            logger.warning("quantize auto -> full precision: no dev ranking and qrels to guard it")
            return None, backend
        decision = build_decision(model.cpu().float(), model_args, data_args, training_args,
                                  template)  # fmt: skip
    path = decision_path(training_args)
    speed = None
    int8 = None
    if decision.get("accepted"):
        precision = "bf16" if training_args.bf16 else "fp32"
        int8 = load_int8(path.parent / decision["int8_dir"], precision, hint="THROUGHPUT")
        if mode == "auto":
            speed = _current_speed(int8, model, data_args, training_args, template, probe)
    use, why = choose(decision, mode, speed)
    if use:
        logger.info("quantize %s -> int8: %s (%s)", mode, why, path)
        return int8, "int8"
    compiled, how = None, ""
    if mode == "auto":
        backend, compiled, how = full_precision_backend(
            model, data_args, training_args, template, probe
        )
    logger.info("quantize %s -> full precision (%s): %s%s (%s)", mode, backend, why, how, path)
    return compiled, backend


BACKEND_CACHE = "backend_speed.json"


def _probe_pairs(data_args, probe=None):
    """``(queries, corpus, pairs)``: the first :data:`PROBE_PAIRS` pairs of the ranking to
    rerank (``--test_file``), whose length class the probes are keyed by; ``probe`` as given
    when the caller has loaded them (rerank: no second copy of the corpus index)."""
    if probe is not None:
        return probe
    from cross_encoder.io import iter_ranking
    from cross_encoder.io.collection import TokenizedCollection

    corpus = TokenizedCollection.load(data_args.corpus_file, data_args.corpus_id_file)
    queries = TokenizedCollection.load(data_args.test_query_file, data_args.test_query_id_file)
    pairs = []
    for r in iter_ranking(data_args.test_file, depth=data_args.prediction_topk):
        if r.qid in queries and r.pid in corpus:
            pairs.append((r.qid, r.pid))
        if len(pairs) >= PROBE_PAIRS:
            break
    return queries, corpus, pairs


def full_precision_backend(
    model, data_args, training_args, template, probe=None
) -> tuple[str, object, str]:
    """``(backend, compiled scorer or None, why)`` for ``--quantize auto`` when int8 is not used:
    the faster of torch and OpenVINO at the resolved precision on this CPU (``auto`` = "else
    the fastest full-precision backend"), by the timing of :func:`speed_probe` (cached per
    machine, model shape and length class in ``<cache>/backend_speed.json``). Only where the
    choice is free: ``--backend torch`` (the default), the CPU, one process, OpenVINO
    installed; otherwise ``(training_args.backend, None, "")``."""
    import torch.distributed as dist

    from cross_encoder import hardware
    from cross_encoder.reranking import openvino as ov_backend

    backend = training_args.backend
    if (
        backend != "torch"
        or training_args.device.type != "cpu"
        or (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)
        or int(os.environ.get("WORLD_SIZE", "1")) > 1  # torchrun, before the group is up
        or not ov_backend.available()
        or not data_args.test_file
    ):
        return backend, None, ""
    precision = "bf16" if training_args.bf16 else "fp32"
    queries, corpus, pairs = _probe_pairs(data_args, probe)
    key = _speed_key(
        model,
        template,
        f"torch {precision} vs openvino {precision}",
        length_bucket(template, queries, corpus, pairs),
    )
    compiled = None
    if not isinstance(hardware._read_cache(hardware.cache_dir() / BACKEND_CACHE).get(key), dict):
        # OpenVINO first: it converts the float32 model (the torch path casts it to bf16)
        compiled = ov_backend.compile_model(
            model.cpu(), template, precision=precision, hint="THROUGHPUT"
        )
    budget = {
        "max_tokens": training_args.prediction_batch_tokens,
        "max_pairs": training_args.prediction_batch_pairs,
        "progress": False,
    }
    speed = speed_probe(
        lambda q, c, p: ov_backend.score_pairs(compiled, template, q, c, p, **budget),
        lambda: full_precision_scorer(model, training_args, template)[0],
        queries,
        corpus,
        pairs,
        key,
        cache_file=BACKEND_CACHE,
        labels=("openvino", "torch"),
    )
    cached = " (cached)" if speed.get("cached") else ""
    chosen = "openvino" if speed["speedup"] > 1.0 else "torch"
    why = f"; OpenVINO {precision} ran {speed['speedup']:.2f}x torch {precision} here{cached}"
    return chosen, (compiled if chosen == "openvino" else None), why


def _current_speed(int8, model, data_args, training_args, template, probe=None) -> dict:
    """The speed probe for this machine (cached; measured on the pairs to rerank when absent,
    e.g. when the decision was made on another machine)."""
    queries, corpus, pairs = _probe_pairs(data_args, probe)
    return speed_probe(
        int8_score_fn(int8, template, training_args),
        lambda: full_precision_scorer(model, training_args, template)[0],
        queries,
        corpus,
        pairs,
        _speed_key(
            model,
            template,
            full_precision_name(training_args),
            length_bucket(template, queries, corpus, pairs),
        ),
    )


def load_decision(model_args, data_args, training_args) -> dict | None:
    """The recorded decision if it exists and its key matches this model and these settings."""
    path = decision_path(training_args)
    if not path.is_file():
        return None
    try:
        decision = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if decision.get("key") != decision_key(model_args, data_args, training_args):
        logger.info("%s is for another model or other settings: deciding again", path)
        return None
    if decision.get("accepted") and not (path.parent / str(decision.get("int8_dir"))).is_dir():
        return None
    logger.info("reusing the int8 decision of %s (same model and settings)", path)
    return decision


@cli
def main(argv: list[str] | None = None) -> int:
    """Decide (and write ``--quantization_file``) without predicting: ``cross_encoder.run``'s
    flags with ``--quantize int8|auto``."""
    from cross_encoder import modeling
    from cross_encoder.io import setup_logging, write_json
    from cross_encoder.modeling.pairs import PairTemplate
    from cross_encoder.run import parse_args

    setup_logging()
    try:
        model_args, data_args, training_args = parse_args(argv)
    except ValueError as e:
        raise InputError(None, str(e).splitlines()[0]) from None
    mode = training_args.quantize
    out = decision_path(training_args)
    missing = missing_extra() if mode != "none" else None
    if mode == "none" or missing:
        if missing and mode == "int8":
            raise InputError(None, f"--quantize int8: {missing}")
        reason = missing or "quantize none"
        logger.info("quantize %s -> full precision: %s", mode, reason)
        write_json(out, {"version": DECISION_VERSION, "mode": mode, "accepted": False,
                         "reason": reason, "int8_dir": None})  # fmt: skip
        return 0
    if load_decision(model_args, data_args, training_args) is not None:
        return 0
    tokenizer = modeling.load_tokenizer(
        model_args.tokenizer_name or model_args.model_name_or_path, model_args.trust_remote_code
    )
    template = PairTemplate(tokenizer, data_args.prediction_max_len)
    modeling.check_tokenization(model_args, data_args, training_args, tokenizer)
    model = modeling.load_model(model_args).float().eval()
    d = build_decision(model, model_args, data_args, training_args, template)
    speed = {**d["speed"], "cached": False}
    use, why = choose(d, mode, speed)
    logger.info("quantize %s -> %s: %s", mode, "int8" if use else "full precision", why)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
