"""Predict and train precision paths: float32 scores under autocast and with bf16 weights,
rank agreement with fp32, bf16 autocast training with float32 master weights and fused
AdamW, what ``run`` picks on this CPU, CUDA OOM back-off, and (on a GPU) bf16 predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cross_encoder import hardware, run
from cross_encoder.io import iter_ranking
from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairTemplate
from cross_encoder.reranking import predict
from cross_encoder.training.trainer import EpochSetter


@pytest.fixture(scope="module")
def scoring(tiny_model_dir, tiny_data, tiny_preprocessed):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    template = PairTemplate(AutoTokenizer.from_pretrained(tiny_model_dir), 48)
    queries = TokenizedCollection.load(tiny_preprocessed / "dev_query")
    corpus = TokenizedCollection.load(tiny_preprocessed / "corpus")
    pairs = [(r.qid, r.pid) for r in iter_ranking(tiny_data["test_file"])]
    return model, template, queries, corpus, pairs


@pytest.fixture(scope="module")
def trained(separating_model_dir, scoring):
    """The tiny model trained until its scores separate the passages (conftest), loaded."""
    from transformers import AutoModelForSequenceClassification

    _, template, queries, corpus, pairs = scoring
    model = AutoModelForSequenceClassification.from_pretrained(separating_model_dir).eval()
    return separating_model_dir, model, template, queries, corpus, pairs


def per_query(pairs, scores) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {}
    for (q, _), s in zip(pairs, scores, strict=True):
        out.setdefault(q, []).append(s)
    return {q: np.array(v) for q, v in out.items()}


def agreement(pairs, got, ref) -> tuple[float, float]:
    """Mean per-query Spearman and the share of queries with the same top-1."""
    g, r = per_query(pairs, got), per_query(pairs, ref)
    rho = np.mean([spearman(g[q], r[q]) for q in r])
    top1 = np.mean([g[q].argmax() == r[q].argmax() for q in r])
    return float(rho), float(top1)


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


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_bf16_weights_keep_an_fp32_head_and_the_ranking(trained):
    import copy

    _, model, template, queries, corpus, pairs = trained
    ref = predict.score_pairs(model, template, queries, corpus, pairs, progress=False)
    half = predict.cast_for_inference(copy.deepcopy(model), torch.bfloat16)
    head = predict._score_head(half)
    assert head.weight.dtype == torch.float32
    assert {p.dtype for n, p in half.named_parameters() if "classifier" not in n} == {
        torch.bfloat16
    }
    got = predict.score_pairs(half, template, queries, corpus, pairs, progress=False)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() < 0.05
    assert len(np.unique(got)) == len(np.unique(ref))  # full-resolution head: no new ties
    rho, top1 = agreement(pairs, got, ref)
    assert rho > 0.98 and top1 == 1.0, (rho, top1)


def test_bf16_training_autocasts_with_fp32_master_weights_and_fused_adamw(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, monkeypatch
):
    """--precision bf16 on a CPU (what auto picks on an AMX CPU): the forward runs under
    torch.autocast("cpu", bf16), the weights the optimizer updates stay float32, and the
    optimizer is torch's fused AdamW."""
    from cross_encoder.training import trainer as trainer_mod

    seen = {}
    real = trainer_mod.CrossEncoderTrainer.compute_loss

    def linear_hook(module, inputs, output):
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        seen["out_dtype"], seen["param_dtype"] = output.dtype, module.weight.dtype

    def spy(self, model, inputs, *args, **kwargs):
        if "optimizer" not in seen:
            linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
            linear.register_forward_hook(linear_hook)
        seen["optimizer"] = self.optimizer
        return real(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(trainer_mod.CrossEncoderTrainer, "compute_loss", spy)
    p = tiny_preprocessed
    out = tmp_path / "out"
    argv = [
        "--output_dir", str(out), "--model_name_or_path", str(tiny_model_dir), "--do_train",
        "--precision", "bf16", "--corpus_file", str(p / "corpus"),
        "--train_query_file", str(p / "train_query"),
        "--train_qrels", str(p / "train_qrels.txt"), "--neg_file", str(tiny_data["neg_file"]),
        "--train_group_size", "4", "--max_len", "48", "--per_device_train_batch_size", "4",
        "--max_steps", "2", "--save_strategy", "no", "--report_to", "none",
        "--disable_tqdm", "true",
    ]  # fmt: skip
    assert run.main(argv) == 0
    assert seen["autocast"] and seen["out_dtype"] == torch.bfloat16
    assert seen["param_dtype"] == torch.float32
    opt = getattr(seen["optimizer"], "optimizer", seen["optimizer"])  # accelerate's wrapper
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"] is True
    from safetensors.torch import load_file

    saved = load_file(out / "model.safetensors")
    assert {t.dtype for t in saved.values() if t.is_floating_point()} == {torch.float32}


def predict_argv(model_dir, tiny_data, tiny_preprocessed, out, *flags):
    p = tiny_preprocessed
    return [
        "--output_dir", str(out / "work"), "--model_name_or_path", str(model_dir),
        "--do_predict", "--corpus_file", str(p / "corpus"),
        "--test_query_file", str(p / "dev_query"), "--test_file", str(tiny_data["test_file"]),
        "--prediction_save_path", str(out / "scores.tsv"), "--max_len", "48",
        "--report_to", "none", *flags,
    ]  # fmt: skip


def read_scores(path) -> np.ndarray:
    return np.array([float(line.split("\t")[2]) for line in open(path)], dtype=np.float32)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU predict path")
def test_run_predict_default_is_the_machine_choice(
    trained, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    model_dir, *_, pairs = trained
    expected = hardware.choose_cpu_precision().precision
    with caplog.at_level("INFO"):
        rc = run.main(predict_argv(model_dir, tiny_data, tiny_preprocessed, tmp_path))
    assert rc == 0
    want = "bf16 weights, fp32 score head" if expected == "bf16" else "predict precision: fp32"
    assert want in caplog.text
    fp32 = tmp_path / "fp32"
    argv = predict_argv(model_dir, tiny_data, tiny_preprocessed, fp32, "--precision", "fp32")
    assert run.main(argv) == 0
    got, ref = read_scores(tmp_path / "scores.tsv"), read_scores(fp32 / "scores.tsv")
    rho, top1 = agreement(pairs, got, ref)
    assert rho > 0.98 and top1 == 1.0, (rho, top1)


@pytest.mark.skipif(not hardware.cpu_capabilities().get("amx_bf16"), reason="needs AMX")
@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU predict path")
def test_on_an_amx_cpu_auto_predicts_in_bf16(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    with caplog.at_level("INFO"):
        argv = predict_argv(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path)
        assert run.main([*argv, "--precision", "auto"]) == 0
    assert "precision auto -> bf16" in caplog.text
    assert "predict precision: bf16 weights, fp32 score head" in caplog.text


def test_cuda_oom_splits_the_batch(scoring, monkeypatch):
    model, template, queries, corpus, pairs = scoring
    ref = predict.score_pairs(model, template, queries, corpus, pairs, progress=False)
    real = predict._forward
    sizes = []

    def small_gpu(model, builder, qrows, prows, device, dtype=None):
        sizes.append(len(qrows))
        if len(qrows) > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, builder, qrows, prows, device, dtype)

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
