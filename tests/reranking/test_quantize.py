"""Static int8 reranking with its dev guard (``cross_encoder.reranking.quantize``): accepted on
the separating test model (int8 scores rank like fp32), rejected with the reason under a
tolerance it cannot meet (full precision used, no int8 model left), one line naming the extra
when it is missing, and the decision reused on rerun without re-calibrating."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from cross_encoder import run
from cross_encoder.reranking import quantize

pytestmark = pytest.mark.skipif(
    quantize.missing_extra() is not None, reason="the openvino extra is not installed"
)


def argv(model_dir, tiny_data, p, out, *flags):
    return [
        "--output_dir", str(out / "work"), "--model_name_or_path", str(model_dir),
        "--corpus_file", str(p / "corpus"),
        "--eval_query_file", str(p / "dev_query"), "--eval_file", str(tiny_data["test_file"]),
        "--eval_qrels", str(tiny_data["dev_qrels"]),
        "--train_query_file", str(p / "train_query"), "--neg_file", str(tiny_data["neg_file"]),
        "--train_qrels", str(p / "train_qrels.txt"),
        "--quantization_file", str(out / "rerank" / "quantization.json"),
        "--max_len", "48", "--prediction_topk", "12", "--quantize_calibration_pairs", "40",
        "--precision", "fp32", "--report_to", "none", "--disable_tqdm", "true", *flags,
    ]  # fmt: skip


def predict_flags(tiny_data, p, out):
    return [
        "--do_predict", "--test_query_file", str(p / "dev_query"),
        "--test_file", str(tiny_data["test_file"]),
        "--prediction_save_path", str(out / "scores.tsv"),
    ]  # fmt: skip


def test_spearman_and_judge_by_hand():
    pairs = [("a", "1"), ("a", "2"), ("a", "3"), ("b", "1"), ("b", "2"), ("c", "9")]
    ref = np.array([3.0, 2.0, 1.0, 1.0, 1.0, 5.0])
    other = np.array([1.0, 2.0, 3.0, 0.5, 0.5, 0.0])
    rho = quantize.per_query_spearman(pairs, ref, other)
    assert rho == {"a": pytest.approx(-1.0), "b": 1.0}  # c has one pair: skipped
    ok, why, fig = quantize.judge("MRR@10", {"MRR@10": 0.80}, {"MRR@10": 0.796}, {"a": 0.995},
                                  0.005, 0.99)  # fmt: skip
    assert ok and fig["metric_drop"] == pytest.approx(0.004)
    ok, why, _ = quantize.judge("MRR@10", {"MRR@10": 0.80}, {"MRR@10": 0.79}, {"a": 0.98},
                                0.005, 0.99)  # fmt: skip
    assert not ok
    assert "dev MRR@10 drops 0.0100 > 0.005" in why and "Spearman 0.9800 < 0.99" in why


def test_auto_wants_int8_faster_here():
    d = {"accepted": True, "reason": "fine"}
    assert quantize.choose(d, "int8", None)[0]
    assert not quantize.choose(d, "auto", {"speedup": 0.9})[0]
    assert quantize.choose(d, "auto", {"speedup": 1.8})[0]
    use, why = quantize.choose({"accepted": False, "reason": "too far"}, "auto", {"speedup": 3})
    assert not use and "rejected on dev: too far" in why


@pytest.mark.slow
def test_accepted_on_the_separating_model_and_reused(
    separating_model_dir, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    a = argv(separating_model_dir, tiny_data, tiny_preprocessed, tmp_path, "--quantize", "int8")
    assert quantize.main(a) == 0
    path = tmp_path / "rerank" / "quantization.json"
    d = json.loads(path.read_text())
    assert d["accepted"], d["reason"]
    assert d["calibration"] == {"source": "train", "pairs": 40, "seed": 42}
    assert d["mean_spearman"] >= 0.99 and d["metric_drop"] <= 0.005
    assert d["dev_queries"] == 6 and d["dev_pairs"] == 72
    assert (tmp_path / "rerank" / "int8" / quantize.INT8_XML).is_file()
    assert d["speed"]["speedup"] > 0
    # the accepted model, loaded on its own (the serving entry point), ranks like fp32
    scorer = quantize.load_int8(tmp_path / "rerank" / "int8", "fp32")
    assert scorer.precision in ("f32", "FP32")
    # rerun: same model and settings -> the decision is reused, nothing recalibrated
    mtime = path.stat().st_mtime_ns
    caplog.clear()
    assert run.main(a + predict_flags(tiny_data, tiny_preprocessed, tmp_path)) == 0
    assert path.stat().st_mtime_ns == mtime
    text = caplog.text
    assert "reusing the int8 decision" in text and "quantize int8 -> int8: int8 accepted" in text
    int8_scores = np.loadtxt(tmp_path / "scores.tsv", usecols=2, dtype=str).astype(np.float32)
    # the same pairs in full precision agree per query
    out_fp = tmp_path / "fp"
    assert run.main(argv(separating_model_dir, tiny_data, tiny_preprocessed, out_fp)
                    + predict_flags(tiny_data, tiny_preprocessed, out_fp)) == 0  # fmt: skip
    fp_scores = np.loadtxt(out_fp / "scores.tsv", usecols=2, dtype=str).astype(np.float32)
    pairs = [
        tuple(line.split("\t")[:2]) for line in (tmp_path / "scores.tsv").read_text().splitlines()
    ]
    rho = quantize.per_query_spearman(pairs, fp_scores, int8_scores)
    assert np.mean(list(rho.values())) >= 0.99
    assert not np.array_equal(int8_scores, fp_scores)  # int8 really ran
    # another threshold: another key, decided again
    caplog.clear()
    assert quantize.main(a + ["--quantize_min_spearman", "0.5"]) == 0
    assert "reusing" not in caplog.text
    assert json.loads(path.read_text())["min_spearman"] == 0.5


@pytest.mark.slow
def test_rejected_with_the_reason_under_an_impossible_tolerance(
    separating_model_dir, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    a = argv(separating_model_dir, tiny_data, tiny_preprocessed, tmp_path, "--quantize", "auto",
             "--quantize_min_spearman", "1.01", "--quantize_max_metric_drop", "-1")  # fmt: skip
    assert run.main(a + predict_flags(tiny_data, tiny_preprocessed, tmp_path)) == 0
    d = json.loads((tmp_path / "rerank" / "quantization.json").read_text())
    assert not d["accepted"] and d["int8_dir"] is None
    assert "Spearman" in d["reason"] and "drops" in d["reason"]
    assert not (tmp_path / "rerank" / "int8").exists()  # nothing of the rejected model
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("quantize auto")]
    assert len(line) == 1 and "full precision" in line[0] and "rejected on dev" in line[0]
    # auto's full precision is the faster backend here, timed once per machine and cached
    backend = "openvino" if "full precision (openvino)" in line[0] else "torch"
    assert f"full precision ({backend})" in line[0] and "x torch fp32 here" in line[0]
    assert (Path(os.environ["CROSS_ENCODER_CACHE_DIR"]) / "backend_speed.json").is_file()
    auto_scores = np.loadtxt(tmp_path / "scores.tsv", usecols=2, dtype=str).astype(np.float32)
    assert len(auto_scores) == 72
    caplog.clear()
    out_none = tmp_path / "none"
    b = argv(separating_model_dir, tiny_data, tiny_preprocessed, out_none, "--quantize", "none")
    assert run.main(b + predict_flags(tiny_data, tiny_preprocessed, out_none)) == 0
    none_scores = np.loadtxt(out_none / "scores.tsv", usecols=2, dtype=str).astype(np.float32)
    np.testing.assert_allclose(auto_scores, none_scores, rtol=0, atol=1e-4)  # both full precision
    caplog.clear()
    assert run.main(a + predict_flags(tiny_data, tiny_preprocessed, tmp_path)) == 0
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("quantize auto")]
    assert len(line) == 1 and f"full precision ({backend})" in line[0] and "(cached)" in line[0]


@pytest.mark.slow
def test_missing_extra_is_one_line(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path,
                                   monkeypatch, capsys):  # fmt: skip
    monkeypatch.setattr(quantize, "missing_extra", lambda: "int8 reranking needs nncf (the "
                        f"openvino extra): {quantize.INSTALL_HINT}")  # fmt: skip
    a = argv(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, "--quantize", "int8")
    assert quantize.main(a) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --quantize int8: int8 reranking needs nncf (the openvino extra): "
        "pip install 'cross-encoder-rerank[openvino]'"
    ]
    a = argv(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, "--quantize", "auto")
    assert quantize.main(a) == 0
    d = json.loads((tmp_path / "rerank" / "quantization.json").read_text())
    assert not d["accepted"] and "needs nncf" in d["reason"]


@pytest.mark.parametrize(
    "backend,device,test_file",
    [("openvino", "cpu", "x.tsv"), ("torch", "cuda", "x.tsv"), ("torch", "cpu", None)],
)
def test_the_backend_choice_is_left_alone_where_it_is_not_free(backend, device, test_file):
    """auto picks the faster full-precision backend only with --backend torch on the CPU (one
    process) and a ranking to time it on; otherwise the backend asked for, untimed."""
    from types import SimpleNamespace

    import torch

    args = SimpleNamespace(backend=backend, device=torch.device(device), bf16=False)
    data = SimpleNamespace(test_file=test_file)
    assert quantize.full_precision_backend(None, data, args, None) == (backend, None, "")
