"""Title pseudo-queries: which titles are picked, the title-less passages, the augmented
training files, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from cross_encoder.data import pseudo_queries as pq
from cross_encoder.io import InputError, read_neg_file, read_qrels, read_queries


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(
        "a\tVitamin D lowers fracture risk\tA trial of vitamin D in 300 adults.\n"
        "b\tShort\tToo short a title to be a query.\n"
        "c\tStatins reduce cardiac events in women\tA cohort of women on statins.\n"
        "d\t\tNo title at all.\n"
        "e\tSleep loss impairs memory consolidation\tSleep deprivation and recall.\n"
    )
    train_q = tmp_path / "train.query.txt"
    train_q.write_text("q1\tdoes vitamin d help bones\n")
    qrels = tmp_path / "qrels.train.tsv"
    qrels.write_text("q1\t0\ta\t1\n")
    negs = tmp_path / "train.negs.tsv"
    negs.write_text("q1\tc,e\n")
    return {"corpus": corpus, "train_q": train_q, "qrels": qrels, "negs": negs}


def test_titles_with_enough_words_are_picked_seeded(files):
    picked = pq.pick_titles(str(files["corpus"]), n=10, seed=0, min_title_words=4)
    assert picked == {
        "pq-a": "Vitamin D lowers fracture risk",
        "pq-c": "Statins reduce cardiac events in women",
        "pq-e": "Sleep loss impairs memory consolidation",
    }
    two = pq.pick_titles(str(files["corpus"]), n=2, seed=3)
    assert len(two) == 2 and two == pq.pick_titles(str(files["corpus"]), n=2, seed=3)


def test_pairs_use_title_less_passages_only(files, tmp_path):
    out = tmp_path / "aug"
    ranking = tmp_path / "pseudo.bm25.tsv"
    ranking.write_text("pq-c\tc\t1\t9\npq-c\ta\t2\t5\npq-c\td\t3\t1\n")
    queries = tmp_path / "pseudo.query.txt"
    queries.write_text("pq-c\tStatins reduce cardiac events in women\n")
    argv = [
        "pairs", "--corpus_file", str(files["corpus"]), "--pseudo_queries", str(queries),
        "--pseudo_ranking", str(ranking), "--train_queries", str(files["train_q"]),
        "--train_qrels", str(files["qrels"]), "--train_negs", str(files["negs"]),
        "--output_dir", str(out),
    ]  # fmt: skip
    assert pq.main(argv) == 0
    rows = [line.split("\t") for line in (out / "corpus.tsv").read_text().splitlines()]
    assert [r[0] for r in rows[:5]] == ["a", "b", "c", "d", "e"]  # the corpus, unchanged
    body = {r[0]: r for r in rows[5:]}
    assert set(body) == {"c#body", "a#body", "d#body"}  # the positive and its negatives
    assert body["c#body"] == ["c#body", "", "A cohort of women on statins."]
    assert read_queries(out / "train.query.txt") == {
        "q1": "does vitamin d help bones",
        "pq-c": "Statins reduce cardiac events in women",
    }
    assert read_qrels(out / "qrels.train.tsv") == {"q1": {"a": 1}, "pq-c": {"c#body": 1}}
    # the own passage is not a negative; the train negatives are kept
    assert read_neg_file(out / "train.negs.tsv") == {"q1": ["c", "e"], "pq-c": ["a#body", "d#body"]}


def test_bad_input_is_one_line(files, tmp_path, capsys):
    assert pq.main(["queries", "--corpus_file", str(files["corpus"]), "--n", "0",
                    "--output_queries", str(tmp_path / "q.txt")]) == 2  # fmt: skip
    with pytest.raises(InputError, match="no passage has a title"):
        pq.pick_titles(str(files["corpus"]), n=3, min_title_words=50)
    queries = tmp_path / "pseudo.query.txt"
    queries.write_text("x1\tnot a pseudo id\n")
    argv = [
        "pairs", "--corpus_file", str(files["corpus"]), "--pseudo_queries", str(queries),
        "--pseudo_ranking", str(files["negs"]), "--train_queries", str(files["train_q"]),
        "--train_qrels", str(files["qrels"]), "--train_negs", str(files["negs"]),
        "--output_dir", str(tmp_path / "aug"),
    ]  # fmt: skip
    assert pq.main(argv) == 2
    assert "does not start with 'pq-'" in capsys.readouterr().err
    assert not (tmp_path / "aug" / "corpus.tsv").exists()
