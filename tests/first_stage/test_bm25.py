from cross_encoder import io
from cross_encoder.first_stage import bm25


def test_ranks_the_matching_passage_first(tmp_path):
    corpus = tmp_path / "c.tsv"
    corpus.write_text(
        "1\tFoxes\tThe red fox jumps over the fence\n"
        "2\t\tA quiet library with old books\n"
        "3\tRivers\tSalmon swim up the cold river\n"
        "4\t\tA fox swims across a river\n"
    )
    queries = tmp_path / "q.tsv"
    queries.write_text("a\tfox jumping\nb\tsalmon rivers\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("a\t0\t1\t1\nb\t0\t3\t1\n")
    out = tmp_path / "run.tsv"
    negs = tmp_path / "negs.tsv"
    rc = bm25.main(
        ["--corpus_file", str(corpus), "--query_file", str(queries), "--depth", "3"]
        + ["--output_ranking", str(out), "--qrels_file", str(qrels)]
        + ["--output_neg_file", str(negs), "--index_dir", str(tmp_path / "index")]
    )
    assert rc == 0
    ranking = io.read_ranking(out)
    assert ranking["a"][0] == "1"  # stemming: jumping ~ jumps, rivers ~ river
    assert ranking["b"][0] == "3"
    lines = out.read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["a", "1", "1"]
    assert io.read_neg_file(negs) == {"a": ["4"], "b": ["4"]}
    # the saved index answers later calls without the corpus
    out2 = tmp_path / "run2.tsv"
    rc = bm25.main(
        ["--index_dir", str(tmp_path / "index"), "--query_file", str(queries)]
        + ["--output_ranking", str(out2), "--depth", "3"]
    )
    assert rc == 0 and out2.read_text() == out.read_text()


def test_scifact_reference_figure(tmp_path):
    """On real SciFact the first stage reproduces the reference BM25 (nDCG@10 0.686)."""
    import pytest

    from cross_encoder.evaluation.metrics import evaluate_ranking

    data = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared/data/scifact"
    if not data.exists():
        pytest.skip("../shared/data/scifact not present")
    retriever, tok, pids = bm25.build_index(data / "corpus.jsonl")
    qrels = io.read_qrels(data / "qrels/test.tsv")
    queries = {q: t for q, t in io.read_queries(data / "queries.jsonl").items() if q in qrels}
    ranking = dict(bm25.iter_search(retriever, tok, pids, queries, depth=100))
    ranked = {q: [p for p, _ in v] for q, v in ranking.items()}
    m = evaluate_ranking(qrels, ranked, ["nDCG@10", "Recall@100"])
    assert abs(m["nDCG@10"] - 0.686) < 0.002
    assert abs(m["Recall@100"] - 0.913) < 0.002
