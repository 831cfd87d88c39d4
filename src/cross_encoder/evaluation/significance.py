"""Paired significance of every evaluated row against a baseline row, per metric.

For each row and metric, over the judged queries (a query a run does not rank counts 0, as
in :mod:`cross_encoder.evaluation.metrics`):

* ``diff``: the mean of the per-query differences (row − baseline);
* ``ci``: its 95% confidence interval, a paired bootstrap over queries
  (``scipy.stats.bootstrap`` on the differences, BCa, 10,000 resamples, seeded);
* ``p_t``: the two-sided p-value of the paired t-test (``scipy.stats.ttest_rel``);
* ``p_perm``: the two-sided p-value of the paired randomization test
  (``scipy.stats.permutation_test``, ``permutation_type="samples"``: each query's two values
  swapped or not; exact when 2^n ≤ the resamples, else 10,000 seeded resamples);
* ``p_t_holm`` / ``p_perm_holm``: the same, Holm-corrected over the rows compared with the
  baseline (one family per metric and test);
* ``wins`` / ``ties`` / ``losses``: queries where the row is better / equal / worse;
* ``significant``: ``p_t_holm < alpha`` (the mark in the table).

Degenerate cases get values rather than scipy's NaN: when every difference is 0, t = 0 and
both p-values are 1; when every difference is the same non-zero value, t = ±inf, the t-test's
p is 0 and the interval is that value (the permutation test is scipy's in both).

Holm's step-down correction (Holm 1979) is the one statistic written here: scipy has none
(``scipy.stats.false_discovery_control`` is Benjamini-Hochberg); it is tested against the
textbook example.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Defaults of :func:`compare`; the legend and the JSON say which were used.
N_RESAMPLES = 10_000
CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 0
TIE = 1e-9  # |difference| below this is a tie (float noise of equal rankings)
# Resampled values held at once by the bootstrap, its BCa jackknife and the permutation test
# (scipy's ``batch``: resamples per batch = this / queries). Unbatched, scipy holds
# n_resamples x n and n x n arrays: 7.5 GB peak for the 10,000 queries of a 2M-pair run,
# and O(queries^2) for the jackknife. Batching draws the same resamples: same results.
BATCH_VALUES = 4_000_000


@dataclass
class Paired:
    """The paired comparison of one row with the baseline on one metric."""

    n: int
    diff: float
    ci: tuple[float, float]
    t: float
    p_t: float
    p_perm: float
    wins: int
    ties: int
    losses: int
    p_t_holm: float = 1.0
    p_perm_holm: float = 1.0
    significant: bool = False

    def as_dict(self) -> dict:
        """The comparison as JSON-ready data (the interval as a list)."""
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d


def _mean_diff(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def paired_test(
    run: Sequence[float],
    base: Sequence[float],
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    batch_values: int = BATCH_VALUES,
) -> Paired:
    """Compare two equally long, query-aligned value lists (see the module docstring).
    Memory: about ``batch_values`` resampled values at a time, whatever the query count."""
    from scipy import stats

    x = np.asarray(run, dtype=float)
    y = np.asarray(base, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("paired values must be two lists of the same length")
    d = x - y
    n = len(d)
    wins = int(np.sum(d > TIE))
    losses = int(np.sum(d < -TIE))
    ties = n - wins - losses
    mean = float(np.mean(d)) if n else 0.0
    batch = max(1, batch_values // max(n, 1))
    if n == 0 or np.all(np.abs(d) <= TIE):  # identical: nothing to test
        return Paired(n, mean, (mean, mean), 0.0, 1.0, 1.0, wins, ties, losses)
    perm = stats.permutation_test(
        (x, y),
        _mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
        batch=batch,
    )
    if n < 2 or np.ptp(d) <= TIE:  # every query moved by the same amount: no variance
        t, p_t, ci = float(np.sign(mean)) * float("inf"), 0.0, (mean, mean)
        return Paired(n, mean, ci, t, p_t, float(perm.pvalue), wins, ties, losses)
    ttest = stats.ttest_rel(x, y)
    ci = _interval(d, confidence, n_resamples, seed, "BCa", batch)
    if not all(np.isfinite(ci)):  # BCa undefined (e.g. a single query differs)
        ci = _interval(d, confidence, n_resamples, seed, "percentile", batch)
    return Paired(
        n, mean, ci, float(ttest.statistic), float(ttest.pvalue), float(perm.pvalue),
        wins, ties, losses,
    )  # fmt: skip


def _interval(d, confidence: float, n_resamples: int, seed: int, method: str, batch=None):
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's "degenerate" warning: handled by the caller
        boot = stats.bootstrap(
            (d,),
            np.mean,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method=method,
            rng=np.random.default_rng(seed),
            batch=batch,
        )
    return float(boot.confidence_interval.low), float(boot.confidence_interval.high)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: the i-th smallest of m is multiplied by
    (m − i), made monotone, capped at 1."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    out = [1.0] * len(pvalues)
    running = 0.0
    m = len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def aligned(
    run: Mapping[str, float], base: Mapping[str, float], queries: Sequence[str] | None = None
) -> tuple[list[float], list[float]]:
    """Values of both runs on the same queries (default: every query of either; one a run
    lacks counts 0, as the metrics do)."""
    qids = list(queries) if queries is not None else list(dict.fromkeys([*base, *run]))
    return [run.get(q, 0.0) for q in qids], [base.get(q, 0.0) for q in qids]


def compare(
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
    baseline: str,
    metrics: Sequence[str],
    alpha: float = ALPHA,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    queries: Sequence[str] | None = None,
) -> dict[str, dict[str, Paired]]:
    """``{row: {metric: Paired}}`` for every row of ``per_query`` (``{row: {metric: {qid:
    value}}}``) but the baseline, Holm-corrected over those rows per metric and test."""
    if baseline not in per_query:
        raise KeyError(baseline)
    rows = [r for r in per_query if r != baseline]
    out: dict[str, dict[str, Paired]] = {r: {} for r in rows}
    for m in metrics:
        for r in rows:
            x, y = aligned(per_query[r][m], per_query[baseline][m], queries)
            out[r][m] = paired_test(x, y, n_resamples, seed)
        for attr in ("p_t", "p_perm"):
            adjusted = holm([getattr(out[r][m], attr) for r in rows])
            for r, p in zip(rows, adjusted, strict=True):
                setattr(out[r][m], f"{attr}_holm", p)
        for r in rows:
            out[r][m].significant = out[r][m].p_t_holm < alpha
    return out


def settings(baseline: str, n_rows: int, alpha: float, n_resamples: int, seed: int) -> dict:
    """What the JSON says about how the figures were made."""
    return {
        "baseline": baseline,
        "test": "paired t-test (scipy.stats.ttest_rel), two-sided",
        "permutation": "paired randomization test (scipy.stats.permutation_test), two-sided",
        "interval": f"{CONFIDENCE:.0%} paired bootstrap (scipy.stats.bootstrap, BCa)",
        "correction": f"Holm over the {n_rows} rows compared",
        "alpha": alpha,
        "n_resamples": n_resamples,
        "seed": seed,
        "mark": "significant: Holm-corrected t-test p < alpha",
    }


def legend(baseline: str, n_rows: int, n_queries: int, alpha: float = ALPHA) -> str:
    """The line under a table that says what a ``*`` means."""
    rows = "row" if n_rows == 1 else "rows"
    return (
        f"* differs from {baseline!r} at p < {alpha:g}: two-sided paired t-test over "
        f"{n_queries} queries, Holm-corrected over {n_rows} {rows}"
    )


def format_differences(
    results: Mapping[str, Mapping[str, Paired]],
    metrics: Sequence[str],
    baseline: str,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> str:
    """One line per row and metric: difference, interval, both p-values, wins/ties/losses."""
    if not results:
        return ""
    width = max(len("run"), *map(len, results))
    head = (
        f"{'run':<{width}}  {'metric':<11}  {'diff':>8}  {'95% CI':^19}  "
        f"{'p(t)':>7}  {'p(perm)':>7}  won/tied/lost"
    )
    lines = [
        f"Paired differences vs {baseline!r} (95% CI: BCa bootstrap, {n_resamples} resamples, "
        f"seed {seed}; p two-sided, Holm-corrected)",
        head,
        "-" * len(head),
    ]
    for row, by_metric in results.items():
        for m in metrics:
            c = by_metric[m]
            mark = "*" if c.significant else " "
            lines.append(
                f"{row:<{width}}  {m:<11}  {c.diff:>+8.4f}  [{c.ci[0]:+.4f}, {c.ci[1]:+.4f}]  "
                f"{_p(c.p_t_holm):>7}{mark} {_p(c.p_perm_holm):>7}  "
                f"{c.wins}/{c.ties}/{c.losses}"
            )
    return "\n".join(lines)


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
