"""Paired tests against a baseline on hand-made cases (cross_encoder.evaluation.significance)."""

import math

import pytest

from cross_encoder.evaluation import significance as sig

# Student's sleep data (Cushny & Peebles 1905), the example of R's ?t.test:
# t.test(extra ~ group, data = sleep, paired = TRUE) gives t = -4.0621, df = 9,
# p-value = 0.002833, mean difference -1.58.
GROUP1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
GROUP2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_identical_runs_give_p_one_and_no_mark():
    vals = {f"q{i}": i / 10 for i in range(10)}
    pq = {"base": {"m": vals}, "same": {"m": dict(vals)}}
    c = sig.compare(pq, "base", ["m"])["same"]["m"]
    assert c.p_t == c.p_perm == c.p_t_holm == c.p_perm_holm == 1.0
    assert c.diff == 0.0 and c.ci == (0.0, 0.0)
    assert (c.wins, c.ties, c.losses) == (0, 10, 0)
    assert not c.significant


def test_better_on_every_one_of_30_queries_is_significant():
    base = {f"q{i}": (i % 7) / 10 for i in range(30)}
    better = {q: v + 0.05 + (i % 3) / 100 for i, (q, v) in enumerate(base.items())}
    c = sig.compare({"base": {"m": base}, "run": {"m": better}}, "base", ["m"])["run"]["m"]
    assert c.p_t < 0.001 and c.p_perm < 0.001
    assert (c.wins, c.ties, c.losses) == (30, 0, 0)
    assert c.ci[0] > 0 and c.ci[0] <= c.diff <= c.ci[1]
    assert c.significant


def test_known_case_against_independent_values():
    c = sig.paired_test(GROUP1, GROUP2)
    # by hand: the differences' mean over their standard error
    d = [a - b for a, b in zip(GROUP1, GROUP2, strict=True)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    assert c.t == pytest.approx(mean / (sd / math.sqrt(len(d))))
    assert c.t == pytest.approx(-4.0621, abs=1e-4)  # R
    assert c.p_t == pytest.approx(0.002833, abs=1e-6)  # R
    assert c.diff == pytest.approx(-1.58)
    # exact randomization test (2^10 sign patterns < 10,000 resamples): only the all-negative
    # and all-positive patterns, times the two signs of the one zero, reach |sum| = 15.8
    assert c.p_perm == pytest.approx(4 / 1024)
    assert (c.wins, c.ties, c.losses) == (0, 1, 9)
    assert c.ci[0] < c.diff < c.ci[1] < 0


def test_a_query_missing_from_one_run_counts_zero():
    base = {"q1": 0.5, "q2": 0.5, "q3": 0.5}
    run = {"q1": 1.0, "q2": 1.0}  # q3 not ranked
    x, y = sig.aligned(run, base)
    assert x == [1.0, 1.0, 0.0] and y == [0.5, 0.5, 0.5]
    c = sig.compare({"b": {"m": base}, "r": {"m": run}}, "b", ["m"])["r"]["m"]
    assert c.diff == pytest.approx(1 / 6)
    assert (c.wins, c.ties, c.losses) == (2, 0, 1)


def test_permutation_test_is_seeded():
    base = [i / 40 for i in range(40)]
    run = [v + (0.1 if i % 3 else -0.12) for i, v in enumerate(base)]
    a, b = sig.paired_test(run, base, seed=7), sig.paired_test(run, base, seed=7)
    assert a.p_perm == b.p_perm and a.ci == b.ci
    assert sig.paired_test(run, base, seed=8).p_perm != a.p_perm


def test_holm_on_the_textbook_example():
    assert sig.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert sig.holm([0.9, 0.2]) == [0.9, 0.4]
    assert sig.holm([]) == []


def test_holm_is_applied_over_the_rows():
    base = {f"q{i}": 0.0 for i in range(8)}
    small = {q: (0.1 if i % 2 else 0.0) for i, q in enumerate(base)}
    out = sig.compare({"b": {"m": base}, "x": {"m": small}, "y": {"m": dict(small)}}, "b", ["m"])
    assert out["x"]["m"].p_t_holm == pytest.approx(min(1.0, 2 * out["x"]["m"].p_t))


def test_table_of_differences_names_baseline_and_marks():
    base = {f"q{i}": 0.2 for i in range(30)}
    run = {q: 0.9 for q in base}
    res = sig.compare({"first stage": {"m": base}, "reranked": {"m": run}}, "first stage", ["m"])
    text = sig.format_differences(res, ["m"], "first stage")
    assert "vs 'first stage'" in text and "30/0/0" in text and "<0.0001*" in text
    assert "Holm-corrected over 1 row" in sig.legend("first stage", 1, 30)


@pytest.mark.parametrize("batch_values", [301 * 7, 10])
def test_batched_resampling_gives_the_unbatched_results(batch_values):
    # memory: scipy's resamples drawn a few at a time (batch = values // queries) must be the
    # same resamples as all at once: p-values and interval equal to the last digit
    base = [((i * 37) % 11) / 10 for i in range(301)]
    run = [
        min(1.0, v + (0.2 if i % 4 == 0 else -0.1 if i % 9 == 0 else 0.0))
        for i, v in enumerate(base)
    ]
    whole = sig.paired_test(run, base, n_resamples=2000, batch_values=10**12)
    batched = sig.paired_test(run, base, n_resamples=2000, batch_values=batch_values)
    assert batched == whole
    assert whole.ci[0] < whole.diff < whole.ci[1] and whole.p_perm < 0.01
