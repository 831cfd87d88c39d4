from cross_encoder import io
from cross_encoder.first_stage import negatives


def test_hard_negatives_skip_positives_keep_order():
    ranking = {"q": ["a", "p", "b", "c"], "other": ["x"]}
    assert negatives.hard_negatives(ranking, {"q": ["p"], "r": ["z"]}) == {"q": ["a", "b", "c"]}
    assert negatives.hard_negatives(ranking, {"q": ["p"]}, depth=2) == {"q": ["a"]}


def test_cli(tmp_path, capsys):
    run = tmp_path / "run.tsv"
    run.write_text("q\ta\t1\t3\nq\tp\t2\t2\nq\tb\t3\t1\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q\t0\tp\t1\n")
    out = tmp_path / "negs.tsv"
    args = ["--ranking_file", str(run), "--qrels_file", str(qrels), "--output_file", str(out)]
    assert negatives.main(args) == 0
    assert io.read_neg_file(out) == {"q": ["a", "b"]}
    qrels.write_text("zz\t0\tp\t1\n")
    assert negatives.main(args) == 2
    assert "ranks none of the 1 queries" in capsys.readouterr().err
