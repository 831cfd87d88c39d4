"""Complete a reranked run with the first stage's tail, and fuse the cross-encoder with the
first stage, the fusion chosen on dev (the ``rerank.fuse_with_first_stage`` stage).

    python -m cross_encoder.reranking.fusion --scores dev.scores.tsv --ranking dev.hybrid.tsv \\
        --output_full dev.full.tsv \\
        [--tune_qrels qrels.dev.tsv --fusion_file fusion.json --source bm25=dev.bm25.tsv ...]
        [--fusion_file fusion.json --output_fused dev.fused.tsv]

* ``--output_full``: the reranked top-k (cross-encoder order), then the rest of the first-stage
  ranking in its own order. This is the pure reranked run; Recall@k for k beyond the reranked
  depth counts the tail, as a reranker deployed on top of the first stage would return it.
* ``--tune_qrels`` + ``--fusion_file``: grid-search the fusion on this split (dev) and write the
  choice, with every setting tried and its metric, to the JSON file. Settings:
  ``rrf``: score = w / (k + rank_CE) + 1 / (k + rank_first), for w and k on a grid;
  ``interpolate``: score = w_CE * norm(CE) + sum_s w_s * norm(score_s), the scores normalised per
  query over the reranked top-k (``minmax`` or ``zscore``), for weights on a grid that sums to
  1 over the cross-encoder, the first stage's own score and each ``--source`` ranking's score
  (e.g. BM25 and dense under a hybrid first stage; a passage a source did not retrieve gets
  that source's lowest score for the query). Convex combinations of normalised scores beat
  RRF when a few judged queries are there to tune on (Bruch, Gai & Ingber, TOIS 2023).
* ``--fusion_file`` + ``--output_fused`` (no qrels): apply the chosen setting unchanged to
  another split (test). A separate, explicitly named run, never the "reranked" row.
* ``--method rrf|interpolate --weight W`` instead of a fusion file: one fixed setting.

The tail below the reranked top-k keeps first-stage order in every run.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from cross_encoder.first_stage.fusion import rrf
from cross_encoder.io import (
    InputError,
    check_overlap,
    cli,
    iter_ranking,
    read_json,
    read_qrels,
    read_ranking,
    read_scores,
    setup_logging,
    write_json,
    write_ranking,
)

logger = logging.getLogger(__name__)

METHODS = ("none", "rrf", "interpolate")
CE = "cross-encoder"
FIRST = "first stage"
RRF_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)
RRF_KS = (10, 30, 60)
GRID_STEP = 0.1
NORMS = ("minmax", "zscore")


@dataclass(frozen=True)
class Fusion:
    """One fusion setting. ``weights`` maps a source (``cross-encoder``, ``first stage`` or a
    ``--source`` name) to its weight."""

    method: str
    weights: dict[str, float] = field(default_factory=dict)
    k: int = 60
    norm: str = "minmax"

    def describe(self) -> str:
        if self.method == "rrf":
            return f"rrf k={self.k}, cross-encoder weight {self.weights[CE]:g}"
        parts = ", ".join(f"{s} {w:g}" for s, w in self.weights.items() if w)
        return f"interpolate {self.norm}: {parts}"


def _minmax(values: Sequence[float]) -> list[float]:
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [0.0 for _ in values]
    return [(v - lo) / (hi - lo) for v in values]


def _zscore(values: Sequence[float]) -> list[float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    if sd == 0:
        return [0.0 for _ in values]
    return [(v - mean) / sd for v in values]


def _with_tail(head: list[str], first: Sequence[str]) -> list[tuple[str, float]]:
    """``head`` in order, then ``first``'s other pids; scores are descending ranks."""
    seen = set(head)
    order = head + [p for p in first if p not in seen]
    n = len(order)
    return [(p, float(n - i)) for i, p in enumerate(order)]


def full_run(
    scores: Mapping[str, Mapping[str, float]], first: Mapping[str, Sequence[str]]
) -> dict[str, list[tuple[str, float]]]:
    """Reranked top-k by cross-encoder score (stable), then the first stage's tail."""
    out = {}
    for q in dict.fromkeys([*first, *scores]):
        s = scores.get(q, {})
        head = sorted(s, key=lambda p: -s[p])
        out[q] = _with_tail(head, first.get(q, []))
    return out


def fuse(
    fusion: Fusion,
    scores: Mapping[str, Mapping[str, float]],
    first: Mapping[str, Sequence[str]],
    source_scores: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, list[tuple[str, float]]]:
    """The reranked top-k reordered by ``fusion``, then the tail. ``source_scores`` maps each
    weighted source other than the cross-encoder to ``{qid: {pid: score}}``."""
    if fusion.method not in METHODS[1:]:
        raise InputError(None, f"--method {fusion.method!r}: use one of {', '.join(METHODS[1:])}")
    norm = _zscore if fusion.norm == "zscore" else _minmax
    out = {}
    for q in dict.fromkeys([*first, *scores]):
        s = scores.get(q, {})
        pids = list(s)
        if not pids:
            out[q] = _with_tail([], first.get(q, []))
            continue
        first_rank = {p: r for r, p in enumerate(first.get(q, []), start=1)}
        missing = len(first_rank) + 1
        if fusion.method == "rrf":
            k, w = fusion.k, fusion.weights[CE]
            ce_order = sorted(pids, key=lambda p: -s[p])
            both = rrf([{q: ce_order}, {q: first.get(q, [])}], k, weights=[w, 1.0])[q]
            fused = {p: v for p, v in both if p in s}
        else:
            fused = dict.fromkeys(pids, 0.0)
            for source, w in fusion.weights.items():
                if not w:
                    continue
                if source == CE:
                    values = [s[p] for p in pids]
                else:
                    fs = source_scores[source].get(q, {})
                    lo = min(fs.values()) if fs else 0.0
                    values = [fs.get(p, lo) for p in pids]
                for p, v in zip(pids, norm(values), strict=True):
                    fused[p] += w * v
        head = sorted(pids, key=lambda p: (-fused[p], first_rank.get(p, missing)))
        out[q] = _with_tail(head, first.get(q, []))
    return out


def fused_run(
    scores: Mapping[str, Mapping[str, float]],
    first: Mapping[str, Sequence[str]],
    first_scores: Mapping[str, Mapping[str, float]],
    method: str,
    weight: float,
    k: int = 60,
) -> dict[str, list[tuple[str, float]]]:
    """One fixed setting: ``rrf`` with this cross-encoder weight, or ``interpolate``
    ``weight * minmax(CE) + (1 - weight) * minmax(first-stage score)``."""
    if method == "rrf":
        fusion = Fusion("rrf", {CE: weight}, k=k)
    else:
        fusion = Fusion(method, {CE: weight, FIRST: 1.0 - weight})
    return fuse(fusion, scores, first, {FIRST: first_scores})


def grid(sources: Sequence[str]) -> list[Fusion]:
    """Every setting the tuning tries: RRF weights x k, then per normalisation every weighting
    of the cross-encoder and ``sources`` on a 0.1 grid that sums to 1 (cross-encoder > 0)."""
    out = [Fusion("rrf", {CE: w}, k=k) for k in RRF_KS for w in RRF_WEIGHTS]
    steps = round(1 / GRID_STEP)
    names = [CE, *sources]
    combos = [
        c
        for c in itertools.product(range(steps + 1), repeat=len(names))
        if sum(c) == steps and c[0] > 0
    ]
    for norm in NORMS:
        for c in combos:
            weights = {n: round(i * GRID_STEP, 10) for n, i in zip(names, c, strict=True)}
            out.append(Fusion("interpolate", weights, norm=norm))
    return out


def tune(
    scores: Mapping[str, Mapping[str, float]],
    first: Mapping[str, Sequence[str]],
    source_scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str,
) -> tuple[Fusion, list[dict]]:
    """The grid setting with the best mean ``metric`` over the judged queries (ties: the
    earlier setting, so RRF before interpolation and more weight on the cross-encoder first)."""
    from cross_encoder.evaluation.metrics import evaluate_ranking

    tried = []
    best: tuple[float, Fusion] | None = None
    for fusion in grid(list(source_scores)):
        run = fuse(fusion, scores, first, source_scores)
        value = evaluate_ranking(qrels, {q: [p for p, _ in v] for q, v in run.items()}, [metric])
        tried.append({**asdict(fusion), metric: value[metric]})
        if best is None or value[metric] > best[0] + 1e-12:
            best = (value[metric], fusion)
    assert best is not None
    return best[1], tried


def _scores_of(path: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in iter_ranking(path):
        out.setdefault(r.qid, {})[r.pid] = r.score
    return out


def read_fusion(path: str) -> Fusion:
    data = read_json(path)
    try:
        c = data["chosen"]
        return Fusion(c["method"], dict(c["weights"]), int(c["k"]), c["norm"])
    except (KeyError, TypeError, ValueError):
        raise InputError(path, "not a fusion file written by --tune_qrels") from None


@cli
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.reranking.fusion", description=__doc__
    )
    p.add_argument("--scores", required=True, help="cross-encoder scores qid\\tpid\\tscore")
    p.add_argument("--ranking", required=True, help="the first-stage ranking that was reranked")
    p.add_argument("--output_full", help="reranked top-k + first-stage tail")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another scored ranking to interpolate with (e.g. bm25=dev.bm25.tsv); repeatable",
    )
    p.add_argument("--tune_qrels", help="qrels to choose the fusion on (writes --fusion_file)")
    p.add_argument("--metric", default="nDCG@10", help="what --tune_qrels maximises")
    p.add_argument("--fusion_file", help="the chosen fusion (written with --tune_qrels, else read)")
    p.add_argument("--method", choices=METHODS, default="none", help="a fixed setting instead")
    p.add_argument("--weight", type=float, default=1.0, help="weight of the cross-encoder")
    p.add_argument("--k", type=int, default=60, help="RRF constant")
    p.add_argument("--output_fused", help="the fused run")
    args = p.parse_args(argv)
    setup_logging()
    if not (args.output_full or args.output_fused or args.tune_qrels):
        raise InputError(None, "nothing to do: give --output_full, --output_fused or --tune_qrels")
    if args.tune_qrels and not args.fusion_file:
        raise InputError(None, "--tune_qrels needs --fusion_file to write the choice to")
    if args.method != "none" and args.fusion_file:
        raise InputError(None, "--method and --fusion_file exclude each other")
    if args.output_fused and args.method == "none" and not args.fusion_file:
        raise InputError(None, "--output_fused needs --fusion_file or --method rrf/interpolate")
    if args.method != "none" and not args.output_fused:
        raise InputError(None, "--output_fused is required with --method rrf/interpolate")
    scores = read_scores(args.scores)
    first = read_ranking(args.ranking)
    if args.output_full:
        write_ranking(args.output_full, full_run(scores, first))
    sources = {FIRST: _scores_of(args.ranking)}
    for spec in args.source:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path or name in (CE, FIRST):
            raise InputError(None, f"--source {spec!r}: expected NAME=PATH")
        sources[name] = _scores_of(path)
    fusion = None
    if args.tune_qrels:
        qrels = read_qrels(args.tune_qrels)
        check_overlap(
            args.scores,
            qrels,
            scores,
            none=f"scores none of the queries of {args.tune_qrels}: nothing to tune on",
        )
        fusion, tried = tune(scores, first, sources, qrels, args.metric)
        best = max(t[args.metric] for t in tried)
        write_json(
            args.fusion_file,
            {
                "chosen": asdict(fusion),
                "describe": fusion.describe(),
                "metric": args.metric,
                "value": best,
                "tuned_on": {"scores": args.scores, "qrels": args.tune_qrels},
                "tried": tried,
            },
        )
        logger.info("fusion chosen on %s: %s (%s %.4f)", args.tune_qrels, fusion.describe(),
                    args.metric, best)  # fmt: skip
    elif args.fusion_file:
        fusion = read_fusion(args.fusion_file)
    elif args.method != "none":
        fusion = (
            Fusion("rrf", {CE: args.weight}, k=args.k)
            if args.method == "rrf"
            else Fusion("interpolate", {CE: args.weight, FIRST: 1.0 - args.weight})
        )
    if args.output_fused:
        missing = [s for s, w in fusion.weights.items() if w and s not in (CE, *sources)]
        if missing:
            raise InputError(
                args.fusion_file, f"weights sources not given here: {', '.join(missing)} (--source)"
            )
        write_ranking(args.output_fused, fuse(fusion, scores, first, sources))
        logger.info("wrote %s (%s)", args.output_fused, fusion.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
