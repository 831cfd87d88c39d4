import pytest

from cross_encoder.evaluation.metrics import evaluate_ranking, order_run, per_query, to_ir_measure

QRELS = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"d": 1}, "q4": {"x": 0}}


def test_mrr_recall_by_hand():
    ranking = {"q1": ["z", "a"], "q2": ["c", "y", "b"], "q3": ["y"]}
    m = evaluate_ranking(QRELS, ranking, ["MRR@10", "Recall@2", "Recall@10"])
    # q4 has no relevant passage: not counted. q1: 1/2, q2: 1, q3: 0 -> /3
    assert m["MRR@10"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert m["Recall@2"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["Recall@10"] == pytest.approx((1 + 1 + 0) / 3)


def test_unranked_judged_query_counts_zero():
    m = evaluate_ranking(QRELS, {"q1": ["a"]}, ["MRR@10"])
    assert m["MRR@10"] == pytest.approx(1 / 3)


def test_cutoff_excludes_late_hits():
    ranking = {"q1": [f"n{i}" for i in range(10)] + ["a"]}
    assert evaluate_ranking({"q1": {"a": 1}}, ranking, ["MRR@10"])["MRR@10"] == 0.0


def test_ndcg_by_hand():
    import math

    qrels = {"q": {"a": 2, "b": 1}}
    ranking = {"q": ["b", "x", "a"]}
    # trec_eval / BEIR convention: linear gain (rel), log2(rank + 1) discount
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    got = evaluate_ranking(qrels, ranking, ["nDCG@10"])["nDCG@10"]
    assert got == pytest.approx(dcg / idcg, abs=1e-6)


def test_ties_keep_file_order():
    # "z" comes first in the file with the same score: it stays first (stable sort),
    # whatever ir_measures' own tie-breaking by document id would do.
    run = {"q1": {"z": 1.0, "a": 1.0}}
    ordered = order_run(run)
    assert ordered == {"q1": ["z", "a"]}
    assert evaluate_ranking({"q1": {"a": 1}}, ordered, ["MRR@10"])["MRR@10"] == 0.5


def test_per_query_lists_every_judged_query():
    pq = per_query(QRELS, {"q1": ["a"]}, ["MRR@10"])
    assert pq["MRR@10"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        to_ir_measure("Foo@3")
