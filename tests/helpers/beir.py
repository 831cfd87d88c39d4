"""A tiny BEIR-format dataset (corpus, queries, train/test qrels) for the BEIR tests."""

from __future__ import annotations

import json


def make_beir(root, n_train=30, n_test=10):
    (root / "qrels").mkdir(parents=True)
    queries, corpus = [], []
    train = ["query-id\tcorpus-id\tscore"]
    test = ["query-id\tcorpus-id\tscore"]
    for i in range(n_train + n_test):
        qid = f"q{i}"
        queries.append(json.dumps({"_id": qid, "text": f"claim\tnumber {i}"}))
        corpus.append(json.dumps({"_id": f"d{i}", "title": "T", "text": f"abstract {i}"}))
        rows = train if i < n_train else test
        rows.append(f"{qid}\td{i}\t1")
        if i % 7 == 0:
            rows.append(f"{qid}\td{(i + 1) % (n_train + n_test)}\t1")
    queries.append(json.dumps({"_id": "unjudged", "text": "no qrels"}))
    (root / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (root / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (root / "qrels" / "train.tsv").write_text("\n".join(train) + "\n")
    (root / "qrels" / "test.tsv").write_text("\n".join(test) + "\n")
    return root
