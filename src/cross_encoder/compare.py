"""Put several runs of the same data side by side, with paired tests against a baseline run.

    python -m cross_encoder.compare results/lr1e-5 results/lr3e-5 [--baseline lr1e-5] \\
        [--row reranked] [--output_dir results/compare/lr]

Each run is a results folder of the workflow (``<run>/eval/<split>.per_query.tsv`` and
``.metrics.json``, what ``cross_encoder.evaluate`` writes). Per split that every run
evaluated, one table: a line per run (its ``--row``, by default the reranked one) × the
metrics, every run tested against the baseline run as ``evaluate`` tests rows against the first
stage (paired t-test and randomization test, Holm-corrected over the runs; bootstrap
interval; queries won/tied/lost: :mod:`cross_encoder.evaluation.significance`), over the
queries every run judged. Runs evaluated on different qrels stop the comparison with one line
naming the two runs and what differs.

With ``--output_dir``: ``<split>.table.txt``, ``compare.json`` (every figure) and
``compare.png`` (per-query differences to the baseline with the interval).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from cross_encoder.evaluation import significance
from cross_encoder.io import InputError, atomic_write, cli, setup_logging, write_json

logger = logging.getLogger(__name__)


def load_run_split(folder: Path, split: str, row: str) -> tuple[str, dict, dict]:
    """``(row name, {metric: {qid: value}}, metrics JSON)`` of one run's split."""
    pq_path = folder / "eval" / f"{split}.per_query.tsv"
    json_path = folder / "eval" / f"{split}.metrics.json"
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(json_path, f"not an evaluate metrics JSON ({e})") from None
    rows: dict[str, dict[str, dict[str, float]]] = {}
    with open(pq_path, encoding="utf-8") as f:
        head = f.readline().rstrip("\r\n")
        if head != "run\tmetric\tqid\tvalue":
            raise InputError(pq_path, "line 1: expected the header run\\tmetric\\tqid\\tvalue")
        for n, line in enumerate(f, 2):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 4:
                raise InputError(pq_path, f"line {n}: expected 4 tab-separated fields")
            try:
                value = float(parts[3])
            except ValueError:
                raise InputError(pq_path, f"line {n}: value {parts[3]!r} is not a number") from None
            rows.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
    named = [r for r in rows if r == row or r.startswith(row + " ")]
    if not named:
        raise InputError(pq_path, f"no row {row!r} (rows: {', '.join(rows)})")
    return named[0], rows[named[0]], meta


def check_same_data(split: str, names: list[str], metas: list[dict], judged: list[set]) -> None:
    """Stop with one line when two runs were evaluated on different qrels for the split."""
    first = names[0]
    for name, meta, qids in zip(names[1:], metas[1:], judged[1:], strict=True):
        a, b = metas[0].get("qrels_sha256"), meta.get("qrels_sha256")
        if a and b and a != b:
            raise InputError(
                None,
                f"runs {first!r} and {name!r} were evaluated on different {split} qrels "
                f"(sha256 {a[:12]} vs {b[:12]}); compare runs of the same data",
            )
        if qids != judged[0]:
            raise InputError(
                None,
                f"runs {first!r} and {name!r} judged different {split} query sets "
                f"({len(judged[0])} vs {len(qids)} queries, {len(judged[0] - qids)} only in "
                f"{first!r}, {len(qids - judged[0])} only in {name!r}); compare runs of the "
                "same data",
            )


def compare_split(
    folders: list[Path],
    names: list[str],
    split: str,
    row: str,
    baseline: str,
    metrics: list[str] | None,
    alpha: float,
    n_resamples: int,
    seed: int,
) -> dict:
    """The runs' rows of one split over the queries every run judged, each tested against the
    baseline."""
    loaded = [load_run_split(f, split, row) for f in folders]
    metas = [m for _, _, m in loaded]
    per_run = {name: pq for name, (_, pq, _) in zip(names, loaded, strict=True)}
    common_metrics = [
        m for m in next(iter(per_run.values())) if all(m in v for v in per_run.values())
    ]
    metrics = [m for m in (metrics or common_metrics)]
    missing = [m for m in metrics if m not in common_metrics]
    if missing:
        raise InputError(None, f"{split}: metric {missing[0]} is not in every run")
    judged = [set(pq[metrics[0]]) for pq in per_run.values()]
    check_same_data(split, names, metas, judged)
    queries = sorted(set.intersection(*judged))
    means = {
        name: {m: sum(pq[m].get(q, 0.0) for q in queries) / max(1, len(queries)) for m in metrics}
        for name, pq in per_run.items()
    }
    tests = significance.compare(
        per_run, baseline, metrics, alpha, n_resamples, seed, queries=queries
    )
    tuned = {}
    for name, (label, _, meta) in zip(names, loaded, strict=True):
        note = (meta.get("tuned_on_these_queries") or {}).get(label)
        if note:
            tuned[name] = note
    return {
        "n_queries": len(queries),
        "rows": {name: label for name, (label, _, _) in zip(names, loaded, strict=True)},
        "runs": means,
        "metrics": metrics,
        "significance": {
            **significance.settings(baseline, len(tests), alpha, n_resamples, seed),
            "rows": {r: {m: c.as_dict() for m, c in t.items()} for r, t in tests.items()},
        },
        "tuned_on_these_queries": tuned,
        "_tests": tests,
        "_per_run": per_run,
        "_queries": queries,
    }


def format_split(split: str, res: dict, n_resamples: int, seed: int, alpha: float) -> str:
    """One split's comparison as the text table ``compare`` prints (significance marks and
    legend)."""
    from cross_encoder.evaluate import format_table

    tests = res["_tests"]
    marks = {r: {m: c.significant for m, c in t.items()} for r, t in tests.items()}
    baseline = res["significance"]["baseline"]
    rows = ", ".join(f"{n}: {label}" for n, label in res["rows"].items())
    text = (
        f"{split}: {res['n_queries']} queries judged by every run (rows: {rows})\n"
        + format_table(res["runs"], res["metrics"], marks, res["tuned_on_these_queries"])
        + "\n"
        + significance.legend(baseline, len(tests), res["n_queries"], alpha)
        + "\n"
    )
    for name, note in res["tuned_on_these_queries"].items():
        text += f"† {name}: {note} (an optimistic figure)\n"
    text += (
        "\n"
        + significance.format_differences(tests, res["metrics"], baseline, n_resamples, seed)
        + "\n"
    )
    return text


def figure(results: dict[str, dict], metric: str, plot: str) -> None:
    """Per-query differences against the baseline, one panel per split, saved to ``plot``."""
    from cross_encoder.evaluation.report import _pyplot, _save, differences_panel

    panels = []
    for split, res in results.items():
        if metric not in res["metrics"]:
            metric = res["metrics"][0]
        baseline = res["significance"]["baseline"]
        base = res["_per_run"][baseline][metric]
        for name, tests in res["_tests"].items():
            vals = res["_per_run"][name][metric]
            diffs = [vals.get(q, 0.0) - base.get(q, 0.0) for q in res["_queries"]]
            panels.append((split, name, diffs, tests[metric].as_dict(), baseline))
    splits = list(results)
    names = list(dict.fromkeys(p[1] for p in panels))
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(names), len(splits), figsize=(6.5 * len(splits), 3.2 * len(names)), squeeze=False
    )
    for split, name, diffs, test, baseline in panels:
        ax = axes[names.index(name)][splits.index(split)]
        mark = "*" if test["significant"] else ""
        title = (
            f"{split}: {name}{mark} − {baseline}\np(t) {test['p_t_holm']:.2g}, p(perm) "
            f"{test['p_perm_holm']:.2g} (Holm)"
        )
        differences_panel(ax, diffs, test, title)
        ax.set_ylabel(f"{metric} difference")
    fig.suptitle(f"Per-query {metric}: each run minus the baseline run, mean and 95% CI")
    fig.tight_layout()
    _save(fig, plot)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cross_encoder.compare", description=__doc__)
    p.add_argument("runs", nargs="+", help="results folders of the workflow (two or more)")
    p.add_argument("--names", help="comma-separated names of the runs (default: folder names)")
    p.add_argument("--baseline", help="the run the others are tested against (default: first)")
    p.add_argument(
        "--row",
        default="reranked",
        help="which row of each run's table to compare: 'reranked', 'fused', 'first stage'",
    )
    p.add_argument("--splits", help="comma-separated (default: every split all runs evaluated)")
    p.add_argument("--metrics", help="comma-separated (default: every metric all runs have)")
    p.add_argument("--figure_metric", default="nDCG@10", help="metric of the figure")
    p.add_argument("--n_resamples", type=int, default=significance.N_RESAMPLES)
    p.add_argument("--seed", type=int, default=significance.SEED)
    p.add_argument("--alpha", type=float, default=significance.ALPHA)
    p.add_argument("--output_dir", help="write <split>.table.txt, compare.json, compare.png")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    folders = [Path(r) for r in args.runs]
    if len(folders) < 2:
        raise InputError(None, "give two runs or more to compare")
    names = (
        [n.strip() for n in args.names.split(",")]
        if args.names
        else [f.name or str(f) for f in folders]
    )
    if len(names) != len(folders) or len(set(names)) != len(names):
        raise InputError(None, f"run names must be unique, one per run: {', '.join(names)}")
    for f in folders:
        if not (f / "eval").is_dir():
            raise InputError(f, "not a results folder of the workflow (no eval/)")
    baseline = args.baseline or names[0]
    if baseline not in names:
        raise InputError(None, f"--baseline {baseline!r} is none of the runs: {', '.join(names)}")
    if args.splits:
        splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    else:
        found = [
            {p.name.removesuffix(".per_query.tsv") for p in (f / "eval").glob("*.per_query.tsv")}
            for f in folders
        ]
        splits = sorted(set.intersection(*found), key=lambda s: (s != "dev", s))
        if not splits:
            raise InputError(None, "no split was evaluated by every run")
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    if args.n_resamples < 1:
        raise InputError(None, "--n_resamples must be >= 1")
    results = {
        s: compare_split(
            folders,
            names,
            s,
            args.row,
            baseline,
            metrics,
            args.alpha,
            args.n_resamples,
            args.seed,
        )
        for s in splits
    }
    texts = {
        s: format_split(s, r, args.n_resamples, args.seed, args.alpha) for s, r in results.items()
    }
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        figure(results, args.figure_metric, str(out / "compare.png"))  # first: it may fail
        for s, text in texts.items():
            with atomic_write(out / f"{s}.table.txt") as f:
                f.write(text)
        write_json(
            out / "compare.json",
            {
                "runs": dict(zip(names, map(str, folders), strict=True)),
                "baseline": baseline,
                "splits": {
                    s: {k: v for k, v in r.items() if not k.startswith("_")}
                    for s, r in results.items()
                },
            },
        )
    print("\n".join(texts.values()), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
