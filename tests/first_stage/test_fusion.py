import pytest

from cross_encoder import io
from cross_encoder.first_stage import fusion


def test_rrf_by_hand():
    a = {"q": ["x", "y", "z"]}
    b = {"q": ["y", "w"]}
    fused = dict(fusion.rrf([a, b], k=60)["q"])
    assert fused["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["x"] == pytest.approx(1 / 61)
    assert fused["w"] == pytest.approx(1 / 62)
    assert [p for p, _ in fusion.rrf([a, b], k=60)["q"]][:2] == ["y", "x"]


def test_queries_in_only_one_run_and_depth():
    out = fusion.rrf([{"q": ["a", "b"]}, {"r": ["c"]}], depth=1)
    assert out == {"q": [("a", 1 / 61)], "r": [("c", 1 / 61)]}


def test_cli(tmp_path, capsys):
    a = tmp_path / "a.tsv"
    a.write_text("q\tx\t1\t9\nq\ty\t2\t8\n")
    b = tmp_path / "b.tsv"
    b.write_text("q\ty\t1\t0.9\n")
    out = tmp_path / "h.tsv"
    args = ["--ranking", str(a), "--ranking", str(b), "--output_ranking", str(out)]
    assert fusion.main(args) == 0
    assert io.read_ranking(out) == {"q": ["y", "x"]}
    assert fusion.main(["--ranking", str(a), "--output_ranking", str(out)]) == 2
