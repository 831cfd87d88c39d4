"""Scoring a ranking in bounded memory (reranking.rerank, reranking.predict's chunks): pairs as
int32 collection rows, batches padded straight from the flat token arrays (the same inputs as
PairTemplate.build + pad), chunk by chunk with queries split across chunk borders, shards
whose files concatenate to the one-job file byte for byte, batches sized by the token budget,
and bad input in the middle of a big ranking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cross_encoder import run
from cross_encoder.io import iter_ranking
from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairBuilder, PairTemplate
from cross_encoder.reranking import predict, rerank
from cross_encoder.reranking.predict import make_batches, score_chunks


@pytest.fixture(scope="module")
def loaded(tiny_model_dir, tiny_preprocessed, tiny_data):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    queries = TokenizedCollection.load(tiny_preprocessed / "dev_query")
    corpus = TokenizedCollection.load(tiny_preprocessed / "corpus")
    pairs = [(r.qid, r.pid) for r in iter_ranking(tiny_data["test_file"])]
    return model, tok, queries, corpus, pairs


def reference_scores(model, template, queries, corpus, pairs, max_tokens, max_pairs, view=None):
    """The one-shot scoring before chunks (main at 875e8e9): every pair built as Python lists,
    length-sorted batches over all pairs, PairTemplate.pad; the model as ``view`` (default
    :func:`predict.inference_view`, as reranking runs it)."""
    built = [template.build(queries.tokens(q), corpus.tokens(p)) for q, p in pairs]
    out = np.empty(len(pairs), dtype=np.float32)
    with torch.inference_mode(), (view or predict.inference_view)(model):
        for b in make_batches([len(ids) for ids, _ in built], max_tokens, max_pairs):
            logits = model(**template.pad([built[i] for i in b])).logits
            out[b] = logits.float().reshape(len(b), -1)[:, 0].numpy()
    return out


@pytest.mark.parametrize("max_len,token_types", [(48, True), (20, True), (12, False)])
def test_builder_pads_like_the_template(loaded, max_len, token_types):
    """Truncated queries and passages (max_len 12/20) and models without token types."""
    _, tok, queries, corpus, pairs = loaded
    template = PairTemplate(tok, max_len, min_passage_len=4)
    template.uses_token_types = token_types
    builder = PairBuilder(template, queries, corpus)
    qrows = np.array([queries.row[q] for q, _ in pairs], dtype=np.int32)
    prows = np.array([corpus.row[p] for _, p in pairs], dtype=np.int32)
    for lo in range(0, len(pairs), 17):  # batches of different widths
        sl = slice(lo, lo + 17)
        want = template.pad(
            [template.build(queries.tokens(q), corpus.tokens(p)) for q, p in pairs[sl]]
        )
        got = builder.pad(qrows[sl], prows[sl])
        assert got.keys() == want.keys()
        for k in want:
            assert torch.equal(got[k], want[k]), k
        lengths = builder.lengths(qrows[sl], prows[sl])
        assert lengths.tolist() == want["attention_mask"].sum(1).tolist()


def test_one_chunk_is_byte_identical_to_one_shot_scoring(loaded):
    model, tok, queries, corpus, pairs = loaded
    template = PairTemplate(tok, 48)
    want = reference_scores(model, template, queries, corpus, pairs, 256, 8)
    got = predict.score_pairs(model, template, queries, corpus, pairs, 256, 8, progress=False)
    assert got.tobytes() == want.tobytes()
    # the whole model (every position of the last layer): the same scores up to rounding
    whole = reference_scores(
        model, template, queries, corpus, pairs, 256, 8, view=predict.fp32_score_head
    )
    np.testing.assert_allclose(got, whole, rtol=0, atol=1e-5)


def test_chunks_split_queries_and_keep_input_order(loaded):
    """72 pairs of 12 per query in chunks of 5: every chunk border but a few splits a query."""
    model, tok, queries, corpus, pairs = loaded
    template = PairTemplate(tok, 48)
    one = predict.score_pairs(model, template, queries, corpus, pairs, 256, 0, progress=False)
    chunked = predict.score_pairs(
        model, template, queries, corpus, pairs, 256, 0, progress=False, chunk_pairs=5
    )
    # batches differ at the chunk borders: the same scores up to float rounding
    np.testing.assert_allclose(chunked, one, rtol=0, atol=1e-5)
    # each chunk alone is the one-shot scoring of its pairs, byte for byte
    for lo in range(0, len(pairs), 5):
        part = predict.score_pairs(
            model, template, queries, corpus, pairs[lo : lo + 5], 256, 0, progress=False
        )
        assert part.tobytes() == chunked[lo : lo + 5].tobytes()


def test_score_chunks_yields_chunks_in_order_with_a_shard_share():
    calls = []

    class Builder:  # lengths only: the scorer returns the row index as the score
        def lengths(self, qr, pr):
            return np.full(len(qr), 3, dtype=np.int32)

    def score(qr, pr):
        calls.append(len(qr))
        return pr.astype(np.float32)

    rows = np.arange(23, dtype=np.int32)
    chunks = predict.chunk_range(23, 5, (2, 2))  # 5 chunks: shard 2 of 2 gets 2..4
    assert list(chunks) == [2, 3, 4]
    got = list(score_chunks(score, Builder(), rows, rows, 9, 0, 5, chunks, progress=False))
    assert [lo for lo, _ in got] == [10, 15, 20]
    assert np.concatenate([s for _, s in got]).tolist() == list(range(10, 23))
    assert max(calls) == 3  # 9 tokens / 3 tokens a pair
    shards = [list(predict.chunk_range(23, 5, (i, 3))) for i in (1, 2, 3)]
    assert list(itertools.chain(*shards)) == list(range(5))


def test_token_budget_sizes_batches_without_a_pair_cap():
    lengths = [10] * 100
    assert [len(b) for b in make_batches(lengths, 300, 0)] == [30, 30, 30, 10]
    assert [len(b) for b in make_batches(lengths, 300, 8)][:2] == [8, 8]
    assert [len(b) for b in make_batches([400], 300, 0)] == [1]  # over budget: alone


def predict_argv(model_dir, tiny_data, p, out, *flags):
    return [
        "--output_dir", str(out.parent / "work"), "--model_name_or_path", str(model_dir),
        "--do_predict", "--corpus_file", str(p / "corpus"),
        "--test_query_file", str(p / "dev_query"), "--test_file", str(tiny_data["test_file"]),
        "--prediction_save_path", str(out), "--max_len", "48", "--precision", "fp32",
        "--report_to", "none", "--disable_tqdm", "true", *flags,
    ]  # fmt: skip


def test_run_shards_concatenate_to_the_one_job_file(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path
):
    args = (tiny_model_dir, tiny_data, tiny_preprocessed)
    one = tmp_path / "one.tsv"
    assert run.main(predict_argv(*args, one, "--prediction_chunk_pairs", "7")) == 0
    parts = []
    for i in (1, 2, 3):
        part = tmp_path / f"part{i}.tsv"
        flags = ("--prediction_chunk_pairs", "7", "--prediction_shard", f"{i}-of-3")
        assert run.main(predict_argv(*args, part, *flags)) == 0
        parts.append(part.read_bytes())
    assert b"".join(parts) == one.read_bytes()
    lines = one.read_text().splitlines()
    assert [ln.split("\t")[:2] for ln in lines] == [
        [r.qid, r.pid] for r in iter_ranking(tiny_data["test_file"])
    ]
    # one chunk (the default) against many: the same pairs, scores equal up to rounding
    whole = tmp_path / "whole.tsv"
    assert run.main(predict_argv(*args, whole)) == 0
    a = [float(ln.split("\t")[2]) for ln in lines]
    b = [float(ln.split("\t")[2]) for ln in whole.read_text().splitlines()]
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_explicit_eval_batch_size_caps_pairs_and_default_does_not(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    args = run.parse_args(
        predict_argv(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path / "s")
    )
    run._pair_cap_from_eval_batch_size([], args[2])
    assert args[2].prediction_batch_pairs == 0 and args[2].per_device_eval_batch_size == 8
    argv = ["--per_device_eval_batch_size", "8"]
    run._pair_cap_from_eval_batch_size(argv, args[2])
    assert args[2].prediction_batch_pairs == 8


def test_bad_line_in_the_middle_of_a_big_ranking(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, capsys
):
    lines = tiny_data["test_file"].read_text().splitlines(keepends=True) * 400  # 28,800
    lines[15_000] = "d1\tp3\tthree\t1.0\n"
    ranking = tmp_path / "big.tsv"
    ranking.write_text("".join(lines))
    out = tmp_path / "scores.tsv"
    argv = predict_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    argv[argv.index("--test_file") + 1] = str(ranking)
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {ranking}:15001: rank 'three' is not an integer"
    assert not out.exists() and not list(tmp_path.glob(".scores.tsv*"))


def test_unknown_ids_are_skipped_and_none_known_is_an_error(loaded, tmp_path, caplog):
    _, _, queries, corpus, _ = loaded
    ranking = tmp_path / "r.tsv"
    ranking.write_text("d0\tp1\t1\t1\nd0\tnope\t2\t1\nghost\tp2\t1\t1\nd1\tp2\t1\t1\n")
    qrows, prows = rerank.ranking_rows(ranking, None, queries, corpus)
    assert [queries.ids[q] for q in qrows] == ["d0", "d1"]
    assert [corpus.ids[p] for p in prows] == ["p1", "p2"]
    assert qrows.dtype == np.int32 and prows.dtype == np.int32
    assert "1 query ids are not in" in caplog.text and "1 passage ids" in caplog.text
    ranking.write_text("ghost\tp2\t1\t1\n")
    with pytest.raises(rerank.InputError, match="none of its query ids"):
        rerank.ranking_rows(ranking, None, queries, corpus)


def test_parse_shard():
    assert rerank.parse_shard(None) == (1, 1)
    assert rerank.parse_shard("2/4") == rerank.parse_shard("2-of-4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1/2/3"):
        with pytest.raises(ValueError):
            rerank.parse_shard(bad)
