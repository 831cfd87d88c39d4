"""The embedded synthetic dataset: formats, determinism, id consistency, hard distractors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bm25s.stopwords import STOPWORDS_EN

from cross_encoder.data import synthetic
from cross_encoder.io import InputError

# words that carry no content for BM25 (its English stopwords) or only ask the question
IGNORED = {*STOPWORDS_EN, "which", "what", "who", "where", "did", "does", "do", "never", "animal"}


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def _content(text: str) -> set[str]:
    """Lower-cased words without stopwords, crudely stemmed (chased/chase, sold/selling...)."""
    words = re.findall(r"[a-z]+", text.lower())
    return {w[:5] for w in words if w not in IGNORED}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return synthetic.generate(tmp_path_factory.mktemp("synthetic"), seed=0)


def test_files_and_columns(data: dict[str, Path]) -> None:
    assert set(data) == set(synthetic.FILES)
    columns = {"corpus": 3, "train_query": 2, "dev_query": 2, "train_qrels": 4, "dev_qrels": 2}
    for key, n in columns.items():
        assert data[key].name == synthetic.FILES[key]
        rows = _rows(data[key])
        assert rows, key
        assert all(len(r) == n for r in rows), key
        assert all(r[0].isdigit() for r in rows), key
    corpus = _rows(data["corpus"])
    assert 500 <= len(corpus) <= 700
    assert any(r[1] == "" for r in corpus) and any(r[1] for r in corpus)
    lengths = [len(r[2].split()) for r in corpus]
    assert min(lengths) >= 20 and max(lengths) <= 80
    assert len(_rows(data["train_query"])) == 300
    assert len(_rows(data["dev_query"])) == 100
    assert all(r[1] == "0" and r[3] == "1" for r in _rows(data["train_qrels"]))
    assert not list(data["corpus"].parent.glob("*.tmp"))  # atomic writes leave no temp files


def test_ids_consistent(data: dict[str, Path]) -> None:
    pids = [r[0] for r in _rows(data["corpus"])]
    assert len(set(pids)) == len(pids)
    qids = {}
    for split in ("train", "dev"):
        ids = [r[0] for r in _rows(data[f"{split}_query"])]
        assert len(set(ids)) == len(ids)
        qids[split] = set(ids)
        qrels = _rows(data[f"{split}_qrels"])
        rel = [(r[0], r[2] if len(r) == 4 else r[1]) for r in qrels]
        assert len(set(rel)) == len(rel)
        assert {q for q, _ in rel} == qids[split]  # every query has a positive
        assert {p for _, p in rel} <= set(pids)
        per_query = {q: sum(1 for x, _ in rel if x == q) for q in qids[split]}
        assert set(per_query.values()) <= {1, 2}
        assert sum(n == 1 for n in per_query.values()) >= 0.8 * len(per_query)
    assert not qids["train"] & qids["dev"]


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    kwargs = {"n_train": 40, "n_dev": 20, "n_random_passages": 10}
    a = synthetic.generate(tmp_path / "a", seed=3, **kwargs)
    b = synthetic.generate(tmp_path / "b", seed=3, **kwargs)
    c = synthetic.generate(tmp_path / "c", seed=4, **kwargs)
    for key in synthetic.FILES:
        assert a[key].read_bytes() == b[key].read_bytes(), key
    assert a["corpus"].read_bytes() != c["corpus"].read_bytes()
    assert a["train_query"].read_bytes() != c["train_query"].read_bytes()


def test_vocabulary_mismatch_and_near_misses(data: dict[str, Path]) -> None:
    """Queries and their passages often use other words for the same thing, and a passage that
    is not relevant often shares as many of the query's words as the relevant one: BM25-hard."""
    corpus = {r[0]: _content(f"{r[1]} {r[2]}") for r in _rows(data["corpus"])}
    queries = dict(_rows(data["dev_query"]))
    relevant: dict[str, set[str]] = {}
    for q, p in _rows(data["dev_qrels"]):
        relevant.setdefault(q, set()).add(p)
    hard = gap = 0
    for qid, text in queries.items():
        words = _content(text)
        best = max(len(words & corpus[p]) for p in relevant[qid])
        hard += any(len(words & bag) >= best for p, bag in corpus.items() if p not in relevant[qid])
        gap += all(not words <= corpus[p] for p in relevant[qid])
    assert gap >= 0.5 * len(queries)  # seed 0: 0.75
    assert hard >= 0.3 * len(queries)  # seed 0: 0.49


def test_synonyms_are_one_lexeme() -> None:
    """No word stands for two lexemes of a pool (a near miss must change the meaning)."""
    for pool, entries in synthetic.POOLS.items():
        words = [synthetic._key(w) for e in entries for w in synthetic._forms(e)]
        assert len(words) == len(set(words)), pool


def test_train_and_dev_share_forms_not_facts() -> None:
    data = synthetic.build(seed=1)
    train = {q.target for q in data.train}
    dev = {q.target for q in data.dev}
    assert not train & dev
    assert {f.scene for f in train} == {f.scene for f in dev} == {s.name for s in synthetic.SCENES}
    # a family: a fact and three near misses (one role changed, or negated), so every queried
    # fact has a near miss and three facts within two changes of it
    facts = [p.fact for p in data.passages if p.fact is not None]
    for q in data.dev[:20]:
        target = q.target.words()
        changes = []
        for f in set(facts) - {q.target}:
            if f.scene == q.target.scene:
                diff = sum(w != target[r] for r, w in f.slots) + (f.negated != q.target.negated)
                changes.append(diff)
        assert 1 in changes
        assert sum(c <= 2 for c in changes) >= 3


def test_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    argv = ["--output_dir", str(out), "--seed", "2", "--n_train", "30", "--n_dev", "10"]
    assert synthetic.main(argv) == 0
    for name in synthetic.FILES.values():
        assert (out / name).is_file()
    assert len(_rows(out / "dev.query.txt")) == 10
    assert "corpus" in capsys.readouterr().out
    assert synthetic.main([*argv, "--queries_per_family", "9"]) == 2
    assert synthetic.main([*argv, "--family_size", "9"]) == 2


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        synthetic.build(n_train=0)
    with pytest.raises(InputError):
        synthetic.build(two_positive_rate=2.0)


def test_test_split_has_its_own_families(tmp_path):
    kwargs = {"n_train": 30, "n_dev": 12, "n_random_passages": 5}
    without = synthetic.generate(tmp_path / "a", seed=5, **kwargs)
    assert "test_query" not in without  # n_test = 0: version 2's five files
    data = synthetic.build(seed=5, n_test=12, **kwargs)
    assert len(data.test) == 12
    ids = [{q.qid for q in qs} for qs in (data.train, data.dev, data.test)]
    assert not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    facts = {q.target for q in data.train + data.dev}
    assert not facts & {q.target for q in data.test}  # nothing tuned on dev is tested
    paths = synthetic.generate(tmp_path / "b", seed=5, n_test=12, **kwargs)
    assert paths["test_qrels"].name == "qrels.test.tsv"
    assert len(paths["test_query"].read_text().splitlines()) == 12
