"""The reranked run completed with the first stage's tail, and the fused run, by hand."""

from cross_encoder.io import read_ranking
from cross_encoder.reranking import fusion as rf

FIRST = {"q": ["a", "b", "c", "d"]}
FIRST_SCORES = {"q": {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}}
CE = {"q": {"a": 0.0, "b": 1.0, "c": 5.0}}  # top-3 reranked; d is the tail


def test_full_run_keeps_tail_below_reranked():
    assert [p for p, _ in rf.full_run(CE, FIRST)["q"]] == ["c", "b", "a", "d"]


def test_rrf_fusion_by_hand():
    # weight 1, k 1: a=1/4+1/2, b=1/3+1/3, c=1/2+1/4 -> tie a/c, first-stage order breaks it
    fused = rf.fused_run(CE, FIRST, FIRST_SCORES, "rrf", 1.0, k=1)
    assert [p for p, _ in fused["q"]] == ["a", "c", "b", "d"]
    # weight 2: a=2/4+1/2=1, b=2/3+1/3=1, c=2/2+1/4 -> c, then the a/b tie in first-stage order
    fused = rf.fused_run(CE, FIRST, FIRST_SCORES, "rrf", 2.0, k=1)
    assert [p for p, _ in fused["q"]] == ["c", "a", "b", "d"]


def test_interpolation_by_hand():
    # minmax CE: a 0, b .2, c 1; first: a 1, b .5, c 0
    fused = rf.fused_run(CE, FIRST, FIRST_SCORES, "interpolate", 0.3)
    assert [p for p, _ in fused["q"]] == ["a", "b", "c", "d"]  # .7, .41, .3
    fused = rf.fused_run(CE, FIRST, FIRST_SCORES, "interpolate", 0.9)
    assert [p for p, _ in fused["q"]] == ["c", "b", "a", "d"]


def test_cli_writes_rankings(tmp_path):
    ranking = tmp_path / "first.tsv"
    ranking.write_text("q\ta\t1\t4\nq\tb\t2\t3\nq\tc\t3\t2\nq\td\t4\t1\n")
    scores = tmp_path / "s.tsv"
    scores.write_text("q\ta\t0\nq\tb\t1\nq\tc\t5\n")
    args = [
        "--scores",
        str(scores),
        "--ranking",
        str(ranking),
        "--output_full",
        str(tmp_path / "full.tsv"),
    ]
    assert rf.main(args) == 0
    assert read_ranking(tmp_path / "full.tsv")["q"] == ["c", "b", "a", "d"]
    assert rf.main([*args, "--method", "rrf"]) == 2  # --output_fused missing
    assert (
        rf.main(
            [
                *args,
                "--method",
                "interpolate",
                "--weight",
                "0.3",
                "--output_fused",
                str(tmp_path / "f.tsv"),
            ]
        )
        == 0
    )
    assert read_ranking(tmp_path / "f.tsv")["q"] == ["a", "b", "c", "d"]


def test_zscore_interpolation_with_a_second_source_by_hand():
    # zscore CE (0, 1, 5): -0.98, -0.39, 1.37; bm25 (a 1, b 9, c 5): -1.22, 1.22, 0
    bm25 = {"q": {"a": 1.0, "b": 9.0, "c": 5.0}}
    fusion = rf.Fusion("interpolate", {rf.CE: 0.5, "bm25": 0.5}, norm="zscore")
    fused = rf.fuse(fusion, CE, FIRST, {"bm25": bm25})
    assert [p for p, _ in fused["q"]] == ["c", "b", "a", "d"]  # .69, .42, -1.10
    fusion = rf.Fusion("interpolate", {rf.CE: 0.2, "bm25": 0.8}, norm="zscore")
    assert [p for p, _ in rf.fuse(fusion, CE, FIRST, {"bm25": bm25})["q"]][:2] == ["b", "c"]


def test_grid_covers_rrf_and_every_weighting():
    g = rf.grid(["first stage", "bm25"])
    rrf = [f for f in g if f.method == "rrf"]
    assert len(rrf) == len(rf.RRF_WEIGHTS) * len(rf.RRF_KS)
    interp = [f for f in g if f.method == "interpolate"]
    # 3 sources on a 0.1 grid summing to 1 with the cross-encoder > 0: 66 - 11 = 55 per norm
    assert len(interp) == 2 * 55
    assert all(abs(sum(f.weights.values()) - 1) < 1e-9 and f.weights[rf.CE] > 0 for f in interp)


def test_tune_picks_the_setting_that_is_best_on_the_qrels():
    # the cross-encoder is right on q1, the first stage on q2: only a fusion gets both
    first = {"q1": ["a", "b", "c"], "q2": ["x", "z", "y"]}
    first_scores = {"q1": {"a": 3.0, "b": 2.9, "c": 0.0}, "q2": {"x": 3.0, "z": 0.1, "y": 0.0}}
    ce = {"q1": {"a": 0.0, "b": 1.0, "c": 0.5}, "q2": {"x": 0.9, "y": 1.0, "z": 0.0}}
    qrels = {"q1": {"b": 1}, "q2": {"x": 1}}
    best, tried = rf.tune(ce, first, {rf.FIRST: first_scores}, qrels, "MRR@10")
    run = rf.fuse(best, ce, first, {rf.FIRST: first_scores})
    assert run["q1"][0][0] == "b" and run["q2"][0][0] == "x"
    assert max(t["MRR@10"] for t in tried) == 1.0
    assert tried[0]["method"] == "rrf" and len(tried) == len(rf.grid([rf.FIRST]))


def test_cli_tunes_on_dev_and_applies_the_choice(tmp_path):
    import json

    ranking = tmp_path / "first.tsv"
    ranking.write_text(
        "q1\ta\t1\t3\nq1\tb\t2\t2.9\nq1\tc\t3\t0\nq2\tx\t1\t3\nq2\tz\t2\t0.1\nq2\ty\t3\t0\n"
    )
    scores = tmp_path / "s.tsv"
    scores.write_text("q1\ta\t0\nq1\tb\t1\nq1\tc\t0.5\nq2\tx\t0.9\nq2\ty\t1\nq2\tz\t0\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\tb\nq2\tx\n")
    fusion = tmp_path / "fusion.json"
    base = ["--scores", str(scores), "--ranking", str(ranking)]
    tune = [*base, "--tune_qrels", str(qrels), "--metric", "MRR@10", "--fusion_file", str(fusion)]
    assert rf.main(tune) == 0
    chosen = json.loads(fusion.read_text())
    assert chosen["value"] == 1.0 and chosen["describe"]
    out = tmp_path / "fused.tsv"
    assert rf.main([*base, "--fusion_file", str(fusion), "--output_fused", str(out)]) == 0
    r = read_ranking(out)
    assert r["q1"][0] == "b" and r["q2"][0] == "x"
    # a fusion weighting a source that is not given here is refused
    data = json.loads(fusion.read_text())
    data["chosen"] = {"method": "interpolate", "weights": {rf.CE: 0.5, "bm25": 0.5},
                      "k": 60, "norm": "minmax"}  # fmt: skip
    fusion.write_text(json.dumps(data))
    assert rf.main([*base, "--fusion_file", str(fusion), "--output_fused", str(out)]) == 2
    fusion.write_text("{")
    assert rf.main([*base, "--fusion_file", str(fusion), "--output_fused", str(out)]) == 2
