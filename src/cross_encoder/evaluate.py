"""Evaluate rankings against qrels: RetroMAE's ``test.py``, side by side with the first stage.

    python -m cross_encoder.evaluate --score_file dev_rerank_score.txt \\
        --qrels_file ./data/qrels.dev.tsv [--first_stage_file dev_ranking.tsv]
    python -m cross_encoder.evaluate --score_file dev_rerank_score.txt \\
        --qrels_file ./data/qrels.dev.tsv --baseline_file bm25_ranking.tsv

Writes ``<score_file>.ranked_results`` (``qid\\tpid\\trank``), optionally a metrics JSON and
per-query values (for plots), and prints a table with one row per run. With two rows or more,
every row is tested against a baseline row (the first stage, ``--baseline_file``'s run or
``--baseline``): the table marks a significant difference, a second table gives the paired
mean difference, its bootstrap interval, the p-values and the queries won/tied/lost
(:mod:`cross_encoder.evaluation.significance`), and the JSON carries them all.
"""

from __future__ import annotations

import argparse
import hashlib
import logging

from cross_encoder.evaluation import significance
from cross_encoder.evaluation.metrics import DEFAULT_METRICS, mean, order_run, per_query
from cross_encoder.io import (
    InputError,
    atomic_write,
    check_overlap,
    cli,
    read_qrels,
    read_scores,
    setup_logging,
    write_json,
)

logger = logging.getLogger(__name__)


def format_table(
    results: dict[str, dict[str, float]],
    metrics: list[str],
    marks: dict[str, dict[str, bool]] | None = None,
    tuned: dict[str, str] | None = None,
) -> str:
    """Rows × metrics; ``*`` after a value significantly different from the baseline's
    (``marks``), ``†`` after the name of a row tuned on these queries (``tuned``)."""
    marks, tuned = marks or {}, tuned or {}
    names = {name: name + (" †" if name in tuned else "") for name in results}
    width = max([len("run"), *map(len, names.values())])
    head = f"{'run':<{width}}  " + "  ".join(f"{m:>11} " for m in metrics)
    lines = [head.rstrip(), "-" * len(head.rstrip())]
    for name, vals in results.items():
        cells = [
            f"{vals[m]:>11.4f}" + ("*" if marks.get(name, {}).get(m) else " ") for m in metrics
        ]
        lines.append((f"{names[name]:<{width}}  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def tuned_rows(rows: list[str], specs: list[str]) -> dict[str, str]:
    """``--tuned ROW=NOTE``: the rows (by name, or by the first word of their name, as the
    fused row's label varies) that were selected or tuned on these queries."""
    out: dict[str, str] = {}
    for spec in specs:
        key, sep, note = spec.partition("=")
        if not sep or not key or not note:
            raise InputError(None, f"--tuned {spec!r}: expected ROW=NOTE")
        for row in rows:
            if row == key or row.startswith(key + " "):
                out[row] = f"{out[row]}; {note}" if row in out else note
    return out


def qrels_digest(path: str) -> str:
    """sha256 of a qrels file (what evaluate records, so compare can tell qrels apart)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_run(path: str) -> dict[str, list[str]]:
    """A score file as ``qid -> [pid, ...]``, best first."""
    return order_run(read_scores(path))


def check_judged(run_path: str, ranking: dict, qrels: dict, qrels_path: str = "qrels") -> None:
    """Error when the run ranks none of the judged queries, warn when it misses some."""
    judged = [q for q, d in qrels.items() if any(r > 0 for r in d.values())]
    if not judged:
        raise InputError(qrels_path, "has no positive judgement (relevance > 0)")
    check_overlap(
        run_path,
        judged,
        ranking,
        none=f"ranks none of the {{n}} judged queries of {qrels_path}; "
        "check that run and qrels belong together",
        some=f"ranks {{found}} of {{n}} judged queries of {qrels_path}; the others count 0",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cross_encoder.evaluate", description=__doc__)
    p.add_argument("--score_file", help="reranked scores: qid\\tpid\\tscore")
    p.add_argument("--qrels_file", required=True)
    p.add_argument("--first_stage_file", help="the ranking that was reranked, for comparison")
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another run to put in the table (repeatable)",
    )
    p.add_argument(
        "--fused_file", help="a fused run (cross_encoder.reranking.fusion --output_fused)"
    )
    p.add_argument(
        "--fusion_file",
        help="the fusion chosen on dev (rerank_fusion --tune_qrels): names the fused row",
    )
    p.add_argument(
        "--baseline_file",
        help="a baseline run (e.g. the first stage of another system): every row is tested "
        "against it",
    )
    p.add_argument(
        "--baseline",
        help="the row every other row is tested against, by name or first word ('fused'; "
        "default: the baseline file's, else 'first stage', else the first row)",
    )
    p.add_argument(
        "--tuned",
        action="append",
        default=[],
        metavar="ROW=NOTE",
        help="mark a row selected or tuned on these queries (repeatable), e.g. "
        "'reranked=checkpoint selected on 50 of these queries'",
    )
    p.add_argument(
        "--n_resamples",
        type=int,
        default=significance.N_RESAMPLES,
        help="bootstrap and permutation resamples",
    )
    p.add_argument("--seed", type=int, default=significance.SEED, help="resampling seed")
    p.add_argument("--alpha", type=float, default=significance.ALPHA, help="significance level")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS))
    p.add_argument("--output_json", help="write {run: {metric: value}} here")
    p.add_argument("--per_query_file", help="write run\\tmetric\\tqid\\tvalue here")
    p.add_argument("--table_file", help="also write the printed table here")
    p.add_argument(
        "--no_ranked_results", action="store_true", help="do not write <score_file>.ranked_results"
    )
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    try:
        from cross_encoder.evaluation.metrics import to_ir_measure

        for m in metrics:
            to_ir_measure(m)
    except ValueError as e:
        raise InputError(None, f"--metrics: {e}") from None
    runs: list[tuple[str, str]] = []
    if args.baseline_file:
        runs.append(("baseline", args.baseline_file))
    if args.first_stage_file:
        runs.append(("first stage", args.first_stage_file))
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(None, f"--run {spec!r}: expected NAME=PATH")
        runs.append((name, path))
    if args.score_file:
        runs.append(("reranked", args.score_file))
    if args.fused_file:
        label = "fused"
        if args.fusion_file:
            from cross_encoder.io import read_json

            chosen = read_json(args.fusion_file)
            if not isinstance(chosen, dict) or "describe" not in chosen:
                raise InputError(args.fusion_file, "not a fusion file (no 'describe' key)")
            label = f"fused ({chosen['describe']}; chosen on dev)"
        runs.append((label, args.fused_file))
    if not runs:
        raise InputError(
            None, "nothing to evaluate: give --score_file, --first_stage_file or --run"
        )
    names = [name for name, _ in runs]
    baseline = args.baseline or (
        "baseline"
        if args.baseline_file
        else ("first stage" if "first stage" in names else names[0])
    )
    named = [r for r in names if r == baseline or r.startswith(baseline + " ")]
    if not named:
        raise InputError(None, f"--baseline {baseline!r} is none of the rows: {', '.join(names)}")
    baseline = named[0]
    if args.n_resamples < 1:
        raise InputError(None, "--n_resamples must be >= 1")
    qrels = read_qrels(args.qrels_file)
    results: dict[str, dict[str, float]] = {}
    queries: dict[str, dict[str, dict[str, float]]] = {}
    for name, path in runs:
        ranking = load_run(path)
        check_judged(path, ranking, qrels, args.qrels_file)
        pq = per_query(qrels, ranking, metrics)
        queries[name] = pq
        results[name] = mean(pq)
        if path == args.score_file and not args.no_ranked_results:
            with atomic_write(f"{path}.ranked_results") as f:
                for q, pids in ranking.items():
                    for rank, p in enumerate(pids, 1):
                        f.write(f"{q}\t{p}\t{rank}\n")
    n = len(next(iter(next(iter(queries.values())).values())))
    tuned = tuned_rows(list(queries), args.tuned)
    tests = {}
    if len(queries) > 1:
        tests = significance.compare(
            queries, baseline, metrics, args.alpha, args.n_resamples, args.seed
        )
    if args.output_json:
        out: dict = {"n_queries": n, "runs": results, "qrels_sha256": qrels_digest(args.qrels_file)}
        if tests:
            out["significance"] = {
                **significance.settings(
                    baseline, len(tests), args.alpha, args.n_resamples, args.seed
                ),
                "rows": {r: {m: c.as_dict() for m, c in t.items()} for r, t in tests.items()},
            }
        if tuned:
            out["tuned_on_these_queries"] = tuned
        write_json(args.output_json, out)
    if args.per_query_file:
        with atomic_write(args.per_query_file) as f:
            f.write("run\tmetric\tqid\tvalue\n")
            for name, pq in queries.items():
                for m, vals in pq.items():
                    for q, v in vals.items():
                        f.write(f"{name}\t{m}\t{q}\t{v!r}\n")
    marks = {r: {m: c.significant for m, c in t.items()} for r, t in tests.items()}
    table = (
        f"{n} judged queries ({args.qrels_file})\n{format_table(results, metrics, marks, tuned)}\n"
    )
    if tests:
        table += significance.legend(baseline, len(tests), n, args.alpha) + "\n"
    for row, note in tuned.items():
        table += f"† {row}: {note} (an optimistic figure)\n"
    if tests:
        table += (
            "\n"
            + significance.format_differences(tests, metrics, baseline, args.n_resamples, args.seed)
            + "\n"
        )
    if args.table_file:
        with atomic_write(args.table_file) as f:
            f.write(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
