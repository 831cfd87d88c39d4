"""Predict precision and memory paths: float32 scores under autocast, CUDA OOM back-off,
and (on a GPU) bf16 predict against fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cross_encoder import predict
from cross_encoder.collection import TokenizedCollection
from cross_encoder.data import PairTemplate
from cross_encoder.io import iter_ranking
from cross_encoder.trainer import EpochSetter


@pytest.fixture(scope="module")
def scoring(tiny_model_dir, tiny_data, tiny_preprocessed):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    template = PairTemplate(AutoTokenizer.from_pretrained(tiny_model_dir), 48)
    queries = TokenizedCollection.load(tiny_preprocessed / "dev_query")
    corpus = TokenizedCollection.load(tiny_preprocessed / "corpus")
    pairs = [(r.qid, r.pid) for r in iter_ranking(tiny_data["test_file"])]
    return model, template, queries, corpus, pairs


def test_autocast_scores_are_fp32_and_do_not_tie(scoring):
    model, template, queries, corpus, pairs = scoring
    ref = predict.score_pairs(model, template, queries, corpus, pairs, progress=False)
    bf16 = predict.score_pairs(
        model, template, queries, corpus, pairs, progress=False, autocast_dtype=torch.bfloat16
    )
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - ref).max() < 0.05
    # a bf16 head would leave ~8 bits of mantissa: many ties among 72 close scores
    assert len(np.unique(bf16)) == len(np.unique(ref))
    assert "forward" not in vars(predict._score_head(model))  # head restored


def test_cuda_oom_splits_the_batch(scoring, monkeypatch):
    model, template, queries, corpus, pairs = scoring
    ref = predict.score_pairs(model, template, queries, corpus, pairs, progress=False)
    real = predict._forward
    sizes = []

    def small_gpu(model, template, batch, device, dtype=None):
        sizes.append(len(batch))
        if len(batch) > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, template, batch, device, dtype)

    monkeypatch.setattr(predict, "_forward", small_gpu)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    got = predict.score_pairs(model, template, queries, corpus, pairs, progress=False)
    assert max(sizes) > 8 and min(sizes) <= 8
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_epoch_setter_gives_resumed_runs_the_right_epoch():
    class DS:
        epoch = None

        def set_epoch(self, e):
            self.epoch = e

    class State:
        epoch = None

    ds, state = DS(), State()
    setter = EpochSetter(ds)
    for loaded, expected in [(None, 0), (0.0, 0), (1.5, 1), (2.0, 2), (2.9999999999, 3)]:
        state.epoch = loaded
        setter.on_epoch_begin(None, state, None)
        assert ds.epoch == expected, loaded


@pytest.mark.gpu
def test_bf16_predict_on_gpu_matches_fp32_cpu(scoring):
    model, template, queries, corpus, pairs = scoring
    ref = predict.score_pairs(model, template, queries, corpus, pairs, progress=False)
    gpu = predict.score_pairs(
        model.to("cuda"),
        template,
        queries,
        corpus,
        pairs,
        device="cuda",
        progress=False,
        autocast_dtype=torch.bfloat16,
    )
    model.to("cpu")
    assert gpu.dtype == np.float32
    assert np.abs(gpu - ref).max() < 0.05
