import numpy as np
import pytest
import torch
from transformers import AutoModel

from cross_encoder import hardware, io
from cross_encoder.first_stage import dense


def test_top_k_equals_brute_force():
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((503, 16)).astype(np.float32)
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    scores, idx = dense.top_k(queries, corpus, k=10, chunk_size=64)
    brute = queries @ corpus.T
    expect = np.argsort(-brute, axis=1)[:, :10]
    assert (idx == expect).all()
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expect, 1), rtol=1e-5)


def test_encode_is_order_independent_and_normalised(tiny_model_dir):
    model = AutoModel.from_pretrained(tiny_model_dir)
    enc = dense.BiEncoder(str(tiny_model_dir), max_len=32, model=model)
    texts = ["a short one", "a much longer text about foxes and rabbits by the river", "x"]
    emb = enc.encode(texts, batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    single = np.stack([enc.encode([t])[0] for t in texts])
    np.testing.assert_allclose(emb, single, atol=1e-5)


def test_bf16_encoding_agrees_with_fp32(tiny_model_dir):
    texts = [f"the fox {w} the rabbit near the river" for w in ("saw", "chased", "met")]
    texts += ["a much longer text about a horse and a cow in a small green town", "x"]
    ref = dense.BiEncoder(str(tiny_model_dir), max_len=32).encode(texts)
    enc = dense.BiEncoder(str(tiny_model_dir), max_len=32, dtype=torch.bfloat16)
    assert next(enc.model.parameters()).dtype == torch.bfloat16
    got = enc.encode(texts, batch_size=2)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert (got * ref).sum(1).min() > 0.99  # cosine to the fp32 embedding


def test_encode_dtype_follows_precision(monkeypatch):
    assert dense.encode_dtype("fp32", "cpu") == torch.float32
    assert dense.encode_dtype("bf16", "cpu") == torch.bfloat16
    # GPUs: bf16 where the GPU has it natively, else fp16 (as training; issue 20)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert dense.encode_dtype("auto", "cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert dense.encode_dtype("auto", "cuda") == torch.float16
    monkeypatch.setattr(hardware, "cpu_capabilities", lambda: {"avx2": True})
    assert dense.encode_dtype("auto", "cpu") == torch.float32  # no AMX: fp32


@pytest.mark.slow
def test_cli_encode_and_search(tmp_path, tiny_data, tiny_model_dir):
    index = tmp_path / "index"
    assert (
        dense.main(
            ["encode", "--model", str(tiny_model_dir), "--corpus_file", str(tiny_data["corpus"])]
            + ["--index_dir", str(index), "--max_len", "32"]
        )
        == 0
    )
    out = tmp_path / "dev.dense.tsv"
    assert (
        dense.main(
            ["search", "--model", str(tiny_model_dir), "--index_dir", str(index)]
            + ["--query_file", str(tiny_data["dev_queries"]), "--output_ranking", str(out)]
            + ["--depth", "5", "--max_len", "32"]
        )
        == 0
    )
    ranking = io.read_ranking(out)
    n_dev = len(tiny_data["dev_queries"].read_text().splitlines())
    assert len(ranking) == n_dev and all(len(v) == 5 for v in ranking.values())
    emb, pids = dense.load_index(index)
    assert emb.shape[0] == len(pids) == len(tiny_data["corpus"].read_text().splitlines())


def test_encode_in_chunks_equals_one_pass(tmp_path, tiny_data, tiny_model_dir):
    """The corpus streams through --chunk_passages texts at a time into the memory-mapped
    index: the same rows, in corpus order, as one chunk."""
    enc = dense.BiEncoder(str(tiny_model_dir), max_len=32)
    n1 = dense.encode_corpus(enc, tiny_data["corpus"], tmp_path / "one", 4, 10**6)
    n3 = dense.encode_corpus(enc, tiny_data["corpus"], tmp_path / "three", 4, 3)
    emb1, pids1 = dense.load_index(tmp_path / "one")
    emb3, pids3 = dense.load_index(tmp_path / "three")
    assert n1 == n3 == len(pids1) > 3
    assert pids1 == pids3 == [pid for pid, _, _ in dense.iter_corpus(tiny_data["corpus"])]
    np.testing.assert_allclose(emb1, emb3, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "three"]  # no temp left
