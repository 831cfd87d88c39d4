"""The BEIR source: a seeded, disjoint dev split carved from train; test passed through."""

import pytest
from helpers.beir import make_beir

from cross_encoder.data import beir
from cross_encoder.io import InputError, read_qrels, read_queries


@pytest.fixture
def beir_dir(tmp_path):
    return make_beir(tmp_path / "beir")


def test_split_is_deterministic_and_disjoint(beir_dir, tmp_path):
    counts = beir.prepare(beir_dir, tmp_path / "a", n_dev=8, seed=3)
    assert counts == {"train": 22, "dev": 8, "test": 10}
    beir.prepare(beir_dir, tmp_path / "b", n_dev=8, seed=3)
    for name in ("train.query.txt", "dev.query.txt", "test.query.txt", "qrels.dev.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    split = {s: set(read_queries(tmp_path / "a" / f"{s}.query.txt")) for s in beir.SPLITS}
    assert not split["train"] & split["dev"]
    assert not split["test"] & (split["train"] | split["dev"])
    assert split["train"] | split["dev"] == {f"q{i}" for i in range(30)}
    for s in beir.SPLITS:  # qrels and queries cover the same qids; judgments kept whole
        qrels = read_qrels(tmp_path / "a" / f"qrels.{s}.tsv")
        assert set(qrels) == split[s]
    assert read_qrels(tmp_path / "a" / "qrels.train.tsv").get("q0") == {"d0": 1, "d1": 1}


def test_another_seed_gives_another_dev(beir_dir, tmp_path):
    beir.prepare(beir_dir, tmp_path / "a", n_dev=8, seed=0)
    beir.prepare(beir_dir, tmp_path / "b", n_dev=8, seed=1)
    a = read_queries(tmp_path / "a" / "dev.query.txt")
    b = read_queries(tmp_path / "b" / "dev.query.txt")
    assert set(a) != set(b)


def test_files_are_clean_tsv_and_corpus_is_not_copied(beir_dir, tmp_path):
    assert (
        beir.main(
            [
                "--data_dir",
                str(beir_dir),
                "--output_dir",
                str(tmp_path / "o"),
                "--n_dev",
                "5",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == sorted(
        [f"{s}.query.txt" for s in beir.SPLITS] + [f"qrels.{s}.tsv" for s in beir.SPLITS]
    )
    for line in (tmp_path / "o" / "train.query.txt").read_text().splitlines():
        assert line.count("\t") == 1  # a tab inside a query's text is not a column
    for line in (tmp_path / "o" / "qrels.test.tsv").read_text().splitlines():
        assert len(line.split("\t")) == 4


def test_too_many_dev_queries_is_an_error(beir_dir, tmp_path):
    with pytest.raises(InputError, match="n_dev"):
        beir.prepare(beir_dir, tmp_path / "o", n_dev=30, seed=0)
    assert (
        beir.main(
            ["--data_dir", str(beir_dir), "--output_dir", str(tmp_path / "o"), "--n_dev", "99"]
        )
        == 2
    )
