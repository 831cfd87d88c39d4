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


def test_cli_from_compact_arrays_writes_what_the_dicts_give(tmp_path):
    # the CLI reads the ranking into int32 arrays; its neg_file must be the one of
    # read_ranking + hard_negatives, byte for byte: rank order not file order, queries
    # interleaved, ties in file order, a 2-column part, depth, qrels order, unranked queries
    import random

    rng = random.Random(0)
    lines = []
    for _ in range(300):
        q = f"q{rng.randrange(12)}"
        lines.append(f"{q}\tp{rng.randrange(40)}\t{rng.randint(1, 20)}\t{rng.random():.3f}")
    lines += ["q3\tp1,p2,p3", "q12\tp5"]
    run = tmp_path / "run.tsv"
    run.write_text("\n".join(lines) + "\n")
    qrels = tmp_path / "qrels.tsv"
    judged = [f"q{i}" for i in (5, 3, 12, 0, 77, 9, 1)]
    qrels.write_text("".join(f"{q}\t0\tp{i}\t1\n" for i, q in enumerate(judged)))
    pos = io.read_positives(qrels)
    for depth in (None, 7):
        out = tmp_path / f"negs_{depth}.tsv"
        args = ["--ranking_file", str(run), "--qrels_file", str(qrels), "--output_file", str(out)]
        assert negatives.main(args + (["--depth", str(depth)] if depth else [])) == 0
        expected = tmp_path / f"expected_{depth}.tsv"
        io.write_neg_file(expected, negatives.hard_negatives(io.read_ranking(run), pos, depth))
        assert out.read_bytes() == expected.read_bytes()
