"""Figures and tables for ``snakemake --report``: metrics by stage, the per-query nDCG@10
change from reranking, the per-query difference to the baseline with its interval, and the
training loss curve.

    python -m cross_encoder.evaluation.report metrics --metrics dev=dev.metrics.json \\
        --metrics test=test.metrics.json --plot metrics.png --table metrics.tsv
    python -m cross_encoder.evaluation.report delta --per_query dev=dev.per_query.tsv --plot
    delta.png
    python -m cross_encoder.evaluation.report loss --trainer_state model/trainer_state.json --plot
    loss.png
    python -m cross_encoder.evaluation.report significance --metrics dev=dev.metrics.json \\
        --per_query dev=dev.per_query.tsv --metric nDCG@10 --plot significance.png

Inputs are what ``cross_encoder.evaluate`` writes (``{"runs": {run: {metric: value}}}`` and
``run\\tmetric\\tqid\\tvalue``) and HF's ``trainer_state.json`` (``log_history``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

from cross_encoder.io import InputError, atomic_write, cli, setup_logging

logger = logging.getLogger(__name__)


def _named(specs: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(None, f"{flag} {spec!r}: expected SPLIT=PATH")
        out.append((name, path))
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")


def load_metrics(path: str) -> dict[str, dict[str, float]]:
    """The ``runs`` of an evaluate ``metrics.json`` (``run -> metric -> value``)."""
    try:
        data = json.loads(Path(path).read_text())
        runs = data["runs"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(path, f"not an evaluate metrics JSON ({e})") from None
    return runs


def metrics_figure(splits: list[tuple[str, str]], plot: str, table: str | None) -> None:
    """One panel per split: a bar per metric and stage, value on top; plus a TSV table."""
    data = [(split, load_metrics(path)) for split, path in splits]
    rows = []
    for split, runs in data:
        for run, vals in runs.items():
            rows.append({"split": split, "stage": run, **{m: vals[m] for m in vals}})
    if table:
        metrics = list(dict.fromkeys(m for r in rows for m in r if m not in ("split", "stage")))
        with atomic_write(table) as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["split", "stage", *metrics])
            for r in rows:
                w.writerow(
                    [r["split"], r["stage"], *(f"{r.get(m, float('nan')):.4f}" for m in metrics)]
                )
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(data), figsize=(6.5 * len(data), 4.2), squeeze=False)
    for ax, (split, runs) in zip(axes[0], data, strict=True):
        names = list(runs)
        metrics = list(dict.fromkeys(m for v in runs.values() for m in v))
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(metrics))]
            ys = [runs[name].get(m, 0.0) for m in metrics]
            bars = ax.bar(xs, ys, width, label=name)
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2, rotation=90)
        ax.set_xticks(range(len(metrics)), metrics)
        ax.set_ylim(0, 1.15)
        ax.set_title(f"{split}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Metrics by stage")
    _save(fig, plot)
    plt.close(fig)


def load_per_query(path: str, metric: str) -> dict[str, dict[str, float]]:
    """One metric of a ``per_query.tsv`` as ``run -> qid -> value``."""
    out: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if not reader.fieldnames or not {"run", "metric", "qid", "value"} <= set(reader.fieldnames):
            raise InputError(path, "expected a header run\\tmetric\\tqid\\tvalue")
        for row in reader:
            if row["metric"] == metric:
                out.setdefault(row["run"], {})[row["qid"]] = float(row["value"])
    return out


def delta_figure(
    splits: list[tuple[str, str]],
    plot: str,
    metric: str = "nDCG@10",
    base: str = "first stage",
    runs: tuple[str, ...] = ("reranked",),
) -> dict[str, dict[str, int]]:
    """Histogram of per-query ``metric`` (run − base), one panel per split; returns
    ``{split: {"better": n, "same": n, "worse": n}}`` of the first run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(splits), figsize=(6.5 * len(splits), 4), squeeze=False)
    counts = {}
    for ax, (split, path) in zip(axes[0], splits, strict=True):
        pq = load_per_query(path, metric)
        if base not in pq:
            raise InputError(path, f"no {base!r} rows for {metric}")
        shown = [r for r in pq if r != base and (r in runs or r.startswith("fused"))]
        if not shown:
            raise InputError(path, f"no reranked rows for {metric}")
        bins = [i / 20 for i in range(-20, 21)]
        for name in shown:
            d = [pq[name][q] - pq[base].get(q, 0.0) for q in pq[name]]
            better = sum(x > 1e-9 for x in d)
            worse = sum(x < -1e-9 for x in d)
            counts.setdefault(split, {name: {}})[name] = {
                "better": better,
                "same": len(d) - better - worse,
                "worse": worse,
            }
            mean = sum(d) / max(1, len(d))
            ax.hist(
                d,
                bins=bins,
                alpha=0.6,
                label=f"{name}: mean {mean:+.3f}, {better} up / {worse} down",
            )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel(f"{metric} change per query (run − {base})")
        ax.set_ylabel("queries")
        ax.set_title(split)
        ax.legend(fontsize=8)
    fig.suptitle(f"Per-query {metric} change from reranking")
    _save(fig, plot)
    plt.close(fig)
    return counts


def differences_panel(ax, diffs: list[float], test: dict, title: str) -> None:
    """Per-query differences, sorted, as bars; the mean difference and its interval across."""
    diffs = sorted(diffs)
    colors = ["tab:green" if d > 1e-9 else "tab:red" if d < -1e-9 else "grey" for d in diffs]
    ax.bar(range(len(diffs)), diffs, width=1.0, color=colors, linewidth=0)
    lo, hi = test["ci"]
    ax.axhspan(lo, hi, color="tab:blue", alpha=0.25, label=f"95% CI [{lo:+.3f}, {hi:+.3f}]")
    ax.axhline(test["diff"], color="tab:blue", lw=1.2, label=f"mean {test['diff']:+.4f}")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlim(-0.5, len(diffs) - 0.5)
    ax.set_xlabel(
        f"queries, sorted ({test['wins']} won / {test['ties']} tied / {test['losses']} lost)"
    )
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(axis="y", alpha=0.3)


def significance_figure(
    metrics: list[tuple[str, str]], per_query: list[tuple[str, str]], plot: str, metric: str
) -> int:
    """One panel per split (columns) and compared row (rows): the per-query ``metric``
    difference to the baseline with the mean, its bootstrap interval and the Holm p-values,
    from what ``cross_encoder.evaluate`` wrote. Returns the number of panels."""
    paths = dict(per_query)
    panels = []
    for split, path in metrics:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise InputError(path, f"not an evaluate metrics JSON ({e})") from None
        sig = data.get("significance") if isinstance(data, dict) else None
        if not sig:
            raise InputError(path, "has no significance (one row only?)")
        if split not in paths:
            raise InputError(None, f"--per_query: no file for split {split!r}")
        pq = load_per_query(paths[split], metric)
        base = pq.get(sig["baseline"])
        if base is None:
            raise InputError(paths[split], f"no {sig['baseline']!r} rows for {metric}")
        tuned = data.get("tuned_on_these_queries", {})
        for row, tests in sig["rows"].items():
            if metric not in tests:
                raise InputError(path, f"no {metric} in the significance of {row!r}")
            vals = pq.get(row, {})
            diffs = [vals.get(q, 0.0) - v for q, v in base.items()]
            panels.append((split, row, diffs, tests[metric], row in tuned))
    splits = list(dict.fromkeys(p[0] for p in panels))
    rows = list(dict.fromkeys(p[1] for p in panels))
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(rows), len(splits), figsize=(6.5 * len(splits), 3.2 * len(rows)), squeeze=False
    )
    for ax in axes.flat:
        ax.set_visible(False)
    for split, row, diffs, test, tuned in panels:
        ax = axes[rows.index(row)][splits.index(split)]
        ax.set_visible(True)
        mark = "*" if test["significant"] else ""
        flag = " † tuned on these queries" if tuned else ""
        title = (
            f"{split}: {row}{mark}{flag}\np(t) {test['p_t_holm']:.2g}, p(perm) "
            f"{test['p_perm_holm']:.2g} (Holm)"
        )
        differences_panel(ax, diffs, test, title)
        ax.set_ylabel(f"{metric} − baseline")
    fig.suptitle(
        f"Per-query {metric} difference to {sig['baseline']!r}, with the mean and its interval"
    )
    fig.tight_layout()
    _save(fig, plot)
    plt.close(fig)
    return len(panels)


def load_log_history(path: str) -> list[dict]:
    """The ``log_history`` of a ``trainer_state.json``."""
    try:
        state = json.loads(Path(path).read_text())
        return list(state["log_history"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(path, f"not a trainer_state.json with log_history ({e})") from None


def dev_curve(history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` of the dev evaluations during training."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for h in history:
        if "step" not in h:
            continue
        for k, v in h.items():
            if k.startswith("eval_") and k != "eval_runtime" and not k.endswith("_per_second"):
                curves.setdefault(k.removeprefix("eval_"), []).append((h["step"], float(v)))
    return curves


def loss_figure(trainer_state: str, plot: str) -> int:
    """Training loss (and learning rate) by step, and below it the dev metrics that selected
    the checkpoint (when training evaluated on dev); returns the number of loss points."""
    history = load_log_history(trainer_state)
    hist = [h for h in history if "loss" in h and "step" in h]
    curves = dev_curve(history)
    plt = _pyplot()
    rows = 2 if curves else 1
    fig, axes = plt.subplots(rows, 1, figsize=(7, 4 * rows), squeeze=False, sharex=bool(curves))
    ax = axes[0][0]
    if hist:
        steps = [h["step"] for h in hist]
        ax.plot(steps, [h["loss"] for h in hist], marker=".", label="training loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("grouped softmax loss")
        lrs = [h.get("learning_rate") for h in hist]
        if all(lr is not None for lr in lrs):
            ax2 = ax.twinx()
            ax2.plot(steps, lrs, color="grey", ls="--", lw=0.8, label="learning rate")
            ax2.set_ylabel("learning rate")
            ax2.legend(loc="upper center", fontsize=8)
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no loss was logged", ha="center", va="center")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    if curves:
        dev = axes[1][0]
        for name, points in curves.items():
            xs, ys = zip(*points, strict=True)
            dev.plot(xs, ys, marker="o", label=name)
        state = json.loads(Path(trainer_state).read_text())
        best = state.get("best_global_step")
        if best:
            dev.axvline(best, color="black", ls=":", lw=1, label=f"kept: step {best}")
        dev.set_xlabel("optimizer step")
        dev.set_ylabel("dev metric (reranked sample)")
        dev.set_title("Model selection on dev")
        dev.grid(alpha=0.3)
        dev.legend(fontsize=8)
    _save(fig, plot)
    plt.close(fig)
    return len(hist)


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.evaluation.report", description=__doc__
    )
    sub = p.add_subparsers(dest="kind", required=True)
    m = sub.add_parser("metrics", help="bar chart + TSV of metrics by stage")
    m.add_argument("--metrics", action="append", required=True, metavar="SPLIT=JSON")
    m.add_argument("--plot", required=True)
    m.add_argument("--table")
    d = sub.add_parser("delta", help="histogram of the per-query change")
    d.add_argument("--per_query", action="append", required=True, metavar="SPLIT=TSV")
    d.add_argument("--metric", default="nDCG@10")
    d.add_argument("--plot", required=True)
    loss = sub.add_parser("loss", help="training loss curve and the dev selection curve")
    loss.add_argument("--trainer_state", required=True)
    loss.add_argument("--plot", required=True)
    s = sub.add_parser(
        "significance", help="per-query differences to the baseline with the interval"
    )
    s.add_argument("--metrics", action="append", required=True, metavar="SPLIT=JSON")
    s.add_argument("--per_query", action="append", required=True, metavar="SPLIT=TSV")
    s.add_argument("--metric", default="nDCG@10")
    s.add_argument("--plot", required=True)
    args = p.parse_args(argv)
    setup_logging()
    if args.kind == "metrics":
        metrics_figure(_named(args.metrics, "--metrics"), args.plot, args.table)
    elif args.kind == "delta":
        counts = delta_figure(_named(args.per_query, "--per_query"), args.plot, args.metric)
        logger.info("per-query change: %s", counts)
    elif args.kind == "significance":
        n = significance_figure(
            _named(args.metrics, "--metrics"),
            _named(args.per_query, "--per_query"),
            args.plot,
            args.metric,
        )
        logger.info("plotted %d panels", n)
    else:
        n = loss_figure(args.trainer_state, args.plot)
        logger.info("plotted %d loss points", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
