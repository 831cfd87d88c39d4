"""The reranked run completed with the first stage's tail, and the fused run, by hand."""

from cross_encoder import rerank_fusion as rf
from cross_encoder.io import read_ranking

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
