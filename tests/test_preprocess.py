import datasets
import pytest
from transformers import AutoTokenizer

from cross_encoder import preprocess
from cross_encoder.io.collection import TokenizedCollection


def test_outputs_match_tokenizer(tiny_preprocessed, tiny_data, tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    corpus = TokenizedCollection.load(tiny_preprocessed / "corpus")
    lines = [line.split("\t") for line in tiny_data["corpus"].read_text().splitlines()]
    first = next(cols for cols in lines if cols[1])  # a passage with a title
    expected = tok(f"{first[1]} [SEP] {first[2]}", add_special_tokens=False)["input_ids"][:32]
    assert corpus.tokens(first[0]) == expected
    mapping = (tiny_preprocessed / "corpus" / "mapping_id.txt").read_text().splitlines()
    assert mapping[0] == f"{lines[0][0]}\t0"
    # RetroMAE's code loads every folder with datasets.load_from_disk: same rows, same order
    for name in ("corpus", "train_query", "dev_query"):
        ds = datasets.load_from_disk(str(tiny_preprocessed / name))
        ours = TokenizedCollection.load(tiny_preprocessed / name)
        assert ds.column_names == ["id", "input_ids"]
        assert ds["id"] == ours.ids
        assert ds["input_ids"] == [ours.tokens(i) for i in ours.ids]
    assert datasets.load_from_disk(str(tiny_preprocessed / "corpus"))["id"] == [
        cols[0] for cols in lines
    ]
    qrels = (tiny_preprocessed / "train_qrels.txt").read_text().splitlines()
    raw = tiny_data["train_qrels"].read_text().splitlines()[0].split("\t")
    assert qrels[0] == f"{raw[0]}\t{raw[2]}"


def test_empty_title_uses_text_only(tiny_preprocessed, tiny_data, tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    corpus = TokenizedCollection.load(tiny_preprocessed / "corpus")
    lines = [line.split("\t") for line in tiny_data["corpus"].read_text().splitlines()]
    untitled = next(cols for cols in lines if not cols[1])
    want = tok(untitled[2], add_special_tokens=False)["input_ids"][:32]
    assert corpus.tokens(untitled[0]) == want


def test_truncates_to_max_seq_length(tmp_path, tiny_model_dir):
    c = tmp_path / "c.tsv"
    c.write_text("1\t\t" + " ".join(["word"] * 100) + "\n")
    q = tmp_path / "q.tsv"
    q.write_text("7\tword\n")
    qr = tmp_path / "qr.tsv"
    qr.write_text("7\t0\t1\t1\n")
    rc = preprocess.main(
        ["--tokenizer_name", str(tiny_model_dir), "--max_seq_length", "10"]
        + ["--output_dir", str(tmp_path / "out"), "--corpus_file", str(c)]
        + ["--train_query_file", str(q), "--dev_query_file", "", "--train_qrels", str(qr)]
    )
    assert rc == 0
    assert len(TokenizedCollection.load(tmp_path / "out" / "corpus").tokens("1")) == 10
    assert not (tmp_path / "out" / "dev_query").exists()


def test_bad_corpus_fails_cleanly(tmp_path, tiny_model_dir, capsys):
    c = tmp_path / "c.tsv"
    c.write_text("1\tok\n1\tdup\n")
    q = tmp_path / "q.tsv"
    q.write_text("7\tword\n")
    rc = preprocess.main(
        ["--tokenizer_name", str(tiny_model_dir), "--output_dir", str(tmp_path / "out")]
        + ["--corpus_file", str(c), "--train_query_file", str(q), "--dev_query_file", ""]
        + ["--train_qrels", str(q)]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {c}:2: duplicate passage id '1'"
    assert sum(line.startswith("error:") for line in err) == 1
    assert not (tmp_path / "out").exists()


def test_missing_default_inputs(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = preprocess.main(["--tokenizer_name", str(tiny_model_dir), "--output_dir", "out"])
    assert rc == 2
    assert "data/corpus.tsv: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("use_title,expected", [(True, "T [SEP] x"), (False, "x")])
def test_passage_text(use_title, expected):
    assert preprocess.passage_text("T", "x", "[SEP]", use_title) == expected


def test_parts_tokenized_by_separate_jobs_equal_one_job(tmp_path, tiny_data, tiny_model_dir):
    """The workflow's per-part jobs (corpus; train queries + qrels; each query set) write the
    same folders as one preprocess run, byte for byte; train_qrels.txt is checked against the
    corpus folder already there."""
    base = ["--tokenizer_name", str(tiny_model_dir), "--max_seq_length", "32", "--use_title"]
    raw = {
        "--corpus_file": tiny_data["corpus"],
        "--train_query_file": tiny_data["train_queries"],
        "--dev_query_file": tiny_data["dev_queries"],
    }
    qrels = ["--train_qrels", str(tiny_data["train_qrels"])]

    def run(out, *only):
        argv = [*base, "--output_dir", str(out), *qrels]
        for flag, path in raw.items():
            argv += [flag, str(path) if flag in only else ""]
        assert preprocess.main(argv) == 0

    run(tmp_path / "one", *raw)
    parts = tmp_path / "parts"
    # the train part first: no corpus to check the qrels against
    argv = [*base, "--output_dir", str(parts), *qrels, "--corpus_file", ""]
    argv += ["--train_query_file", str(tiny_data["train_queries"]), "--dev_query_file", ""]
    assert preprocess.main(argv) == 2
    assert not parts.exists()
    run(parts, "--corpus_file")
    run(parts, "--train_query_file")
    run(parts, "--dev_query_file")
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert files == sorted(p.relative_to(parts) for p in parts.rglob("*"))
    for f in files:
        if (tmp_path / "one" / f).is_file():
            assert (tmp_path / "one" / f).read_bytes() == (parts / f).read_bytes(), f
