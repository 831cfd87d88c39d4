import os

import pytest

from cross_encoder import io


def w(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def test_corpus_three_and_two_columns(tmp_path):
    p = w(tmp_path, "c.tsv", "1\tTitle\tSome text\n2\t\tNo title\n")
    assert list(io.iter_corpus(p)) == [("1", "Title", "Some text"), ("2", "", "No title")]
    p2 = w(tmp_path, "c2.tsv", "1\tjust text\n")
    assert list(io.iter_corpus(p2)) == [("1", "", "just text")]


def test_corpus_beir_jsonl(tmp_path):
    p = w(tmp_path, "corpus.jsonl", '{"_id": "d1", "title": "T", "text": "x"}\n')
    assert list(io.iter_corpus(p)) == [("d1", "T", "x")]


def test_crlf_and_bom(tmp_path):
    p = w(tmp_path, "q.tsv", "\ufeff1\thello\r\n2\tworld\r\n")
    assert io.read_queries(p) == {"1": "hello", "2": "world"}


@pytest.mark.parametrize(
    "name,text,match",
    [
        ("c.tsv", "1\ta\tb\tc\n", r"c\.tsv:1: expected 2 or 3"),
        ("c.tsv", "1\tx\n1\ty\n", r"c\.tsv:2: duplicate passage id '1'"),
        ("c.tsv", "1\t\t \n", r"c\.tsv:1: passage '1' has no text"),
        ("c.tsv", "", r"c\.tsv: is empty"),
        ("c.jsonl", '{"title": "x"}\n', r'c\.jsonl:1: missing "_id"'),
        ("c.jsonl", "{not json\n", r"c\.jsonl:1: invalid JSON"),
    ],
)
def test_corpus_bad_input(tmp_path, name, text, match):
    with pytest.raises(io.InputError, match=match):
        list(io.iter_corpus(w(tmp_path, name, text)))


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(io.InputError, match="no such file"):
        io.read_queries(tmp_path / "nope.tsv")
    p = w(tmp_path, "q.tsv", b"1\tok\n2\t\xff\xfe bad\n", mode="wb")
    with pytest.raises(io.InputError, match=r"q\.tsv:2: not valid UTF-8"):
        io.read_queries(p)


def test_queries_bad_input(tmp_path):
    with pytest.raises(io.InputError, match=r":1: expected 2 tab-separated columns"):
        io.read_queries(w(tmp_path, "q.tsv", "1 no tab\n"))
    with pytest.raises(io.InputError, match=r":2: duplicate query id"):
        io.read_queries(w(tmp_path, "q2.tsv", "1\ta\n1\tb\n"))
    with pytest.raises(io.InputError, match=r":1: query '1' has no text"):
        io.read_queries(w(tmp_path, "q3.tsv", "1\t  \n"))


@pytest.mark.parametrize(
    "text",
    [
        "q1\tp1\nq1\tp2\n",  # RocketQA 2-column
        "q1\tp1,p2\n",  # train_qrels.txt with a list
        "q1\t0\tp1\t1\nq1\t0\tp2\t1\n",  # official 4-column
        "q1 0 p1 1\nq1 0 p2 1\n",  # TREC, spaces
        "query-id\tcorpus-id\tscore\nq1\tp1\t1\nq1\tp2\t1\n",  # BEIR
    ],
)
def test_qrels_formats(tmp_path, text):
    assert io.read_qrels(w(tmp_path, "qrels.tsv", text)) == {"q1": {"p1": 1, "p2": 1}}


def test_qrels_bad(tmp_path):
    with pytest.raises(io.InputError, match=r"qrels\.tsv:1: relevance 'x' is not an integer"):
        io.read_qrels(w(tmp_path, "qrels.tsv", "q1\t0\tp1\tx\n"))
    with pytest.raises(io.InputError, match=r":1: expected qrels"):
        io.read_qrels(w(tmp_path, "qrels2.tsv", "a b c d e\n"))


def test_positives_drop_zero_relevance():
    assert io.positives({"q": {"a": 0, "b": 2}, "r": {"c": 0}}) == {"q": ["b"]}


def test_rankings(tmp_path):
    four = w(tmp_path, "r4.tsv", "q\ta\t1\t3.0\nq\tb\t2\t2.0\nq\tc\t3\t1.0\n")
    assert [(r.pid, r.rank) for r in io.iter_ranking(four, depth=2)] == [("a", 1), ("b", 2)]
    two = w(tmp_path, "r2.tsv", "q\ta\nq\tb\n")
    assert io.read_ranking(two) == {"q": ["a", "b"]}
    trec = w(tmp_path, "run.trec", "q Q0 b 2 1.5 bm25\nq Q0 a 1 2.5 bm25\n")
    assert io.read_ranking(trec) == {"q": ["a", "b"]}
    with pytest.raises(io.InputError, match=r"r5\.tsv:1: rank 'one' is not an integer"):
        list(io.iter_ranking(w(tmp_path, "r5.tsv", "q\ta\tone\t1.0\n")))


def test_scores_plain_and_retromae_brackets(tmp_path):
    p = w(tmp_path, "s.tsv", "q\ta\t[3.5]\nq\tb\t-1e-3\n")
    assert io.read_scores(p) == {"q": {"a": 3.5, "b": -0.001}}
    with pytest.raises(io.InputError, match=r"s2\.tsv:1: score 'abc' is not a number"):
        io.read_scores(w(tmp_path, "s2.tsv", "q\ta\tabc\n"))


def test_neg_file_concatenates_repeated_qids(tmp_path):
    p = w(tmp_path, "negs.tsv", "q\ta,b\nq\tc\n")
    assert io.read_neg_file(p) == {"q": ["a", "b", "c"]}


def test_writers_roundtrip(tmp_path):
    io.write_ranking(tmp_path / "r.tsv", {"q": [("a", 2.0), ("b", 1.0)]})
    assert (tmp_path / "r.tsv").read_text() == "q\ta\t1\t2.0\nq\tb\t2\t1.0\n"
    io.write_scores(tmp_path / "s.tsv", [("q", "a", 0.25)])
    assert io.read_scores(tmp_path / "s.tsv") == {"q": {"a": 0.25}}
    io.write_neg_file(tmp_path / "n.tsv", {"q": ["a", "b"], "r": []})
    assert (tmp_path / "n.tsv").read_text() == "q\ta,b\n"


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), io.atomic_write(target) as f:
        f.write("partial")
        raise RuntimeError("boom")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_write(target) as f:
        f.write("new")
        raise RuntimeError
    assert target.read_text() == "old"


def test_cli_decorator_one_line_exit_2(capsys):
    @io.cli
    def main(argv=None):
        raise io.InputError("x.tsv", "bad thing", 3)

    assert main() == 2
    err = capsys.readouterr().err
    assert err == "error: x.tsv:3: bad thing\n"
