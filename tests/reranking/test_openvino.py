"""The OpenVINO rerank backend (``--backend openvino``): scores in input order that rank like
the torch fp32 path, at OpenVINO's own precision and at f32; the run CLI flag; a one-line
error where OpenVINO is not installed; no telemetry module loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from cross_encoder import run
from cross_encoder.io import iter_ranking
from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairTemplate
from cross_encoder.reranking import openvino as openvino_backend
from cross_encoder.reranking import predict


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement(pairs, got, ref) -> tuple[float, float]:
    """Mean per-query Spearman and the share of queries with the same top-1."""
    by_q: dict[str, list[int]] = {}
    for i, (q, _) in enumerate(pairs):
        by_q.setdefault(q, []).append(i)
    rho = np.mean([spearman(got[ix], ref[ix]) for ix in by_q.values()])
    top1 = np.mean([got[ix].argmax() == ref[ix].argmax() for ix in by_q.values()])
    return float(rho), float(top1)


@pytest.fixture(scope="module")
def trained(separating_model_dir, tiny_data, tiny_preprocessed):
    """The tiny model trained until its scores separate the passages (conftest), loaded."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, p = separating_model_dir, tiny_preprocessed
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    template = PairTemplate(AutoTokenizer.from_pretrained(out), 48)
    queries = TokenizedCollection.load(p / "dev_query")
    corpus = TokenizedCollection.load(p / "corpus")
    pairs = [(r.qid, r.pid) for r in iter_ranking(tiny_data["test_file"])]
    return out, model, template, queries, corpus, pairs


def predict_argv(model_dir, tiny_data, tiny_preprocessed, out, *flags):
    p = tiny_preprocessed
    return [
        "--output_dir", str(out / "work"), "--model_name_or_path", str(model_dir),
        "--do_predict", "--corpus_file", str(p / "corpus"),
        "--test_query_file", str(p / "dev_query"), "--test_file", str(tiny_data["test_file"]),
        "--prediction_save_path", str(out / "scores.tsv"), "--max_len", "48",
        "--report_to", "none", "--disable_tqdm", "true", *flags,
    ]  # fmt: skip


def read_scores(path) -> np.ndarray:
    return np.array([float(line.split("\t")[2]) for line in open(path)], dtype=np.float32)


def test_missing_openvino_is_a_one_line_error(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(openvino_backend, "available", lambda: False)
    argv = ["--output_dir", str(tmp_path), "--model_name_or_path", str(tiny_model_dir),
            "--do_predict", "--backend", "openvino", "--report_to", "none"]  # fmt: skip
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --backend openvino needs OpenVINO: pip install 'cross-encoder-rerank[openvino]'"
    ]


def test_unknown_backend_is_refused(tiny_model_dir, tmp_path, capsys):
    argv = ["--output_dir", str(tmp_path), "--model_name_or_path", str(tiny_model_dir),
            "--do_predict", "--backend", "onnx", "--report_to", "none"]  # fmt: skip
    with pytest.raises(SystemExit):
        run.main(argv)
    assert "invalid choice: 'onnx'" in capsys.readouterr().err


@pytest.mark.parametrize("precision", [None, "fp32"])
def test_scores_rank_like_the_torch_fp32_path(trained, precision):
    pytest.importorskip("openvino")
    _, model, template, queries, corpus, pairs = trained
    ref = predict.score_pairs(model, template, queries, corpus, pairs, progress=False)
    scorer = openvino_backend.compile_model(model, template, precision=precision, threads=1)
    assert predict._score_head(model).out_features == 1  # the head is back in the model
    got = openvino_backend.score_pairs(
        scorer, template, queries, corpus, pairs, max_tokens=256, max_pairs=8, progress=False
    )
    assert got.dtype == np.float32 and got.shape == ref.shape
    # the float32 head: no ties that fp32 does not have
    assert len(np.unique(got)) == len(np.unique(ref))
    if precision == "fp32" or scorer.precision == "f32":
        assert np.abs(got - ref).max() < 1e-4
    else:  # OpenVINO's own choice: bf16 on AMX / AVX512_BF16
        assert np.abs(got - ref).max() < 0.05
    rho, top1 = agreement(pairs, got, ref)
    assert rho > 0.98 and top1 == 1.0, (rho, top1)


def test_throughput_streams_score_like_one_request(trained):
    """THROUGHPUT (rerank's hint): batches in flight on OpenVINO's streams, resolved per chunk,
    give the scores of one request at a time, in input order, across chunk borders."""
    pytest.importorskip("openvino")
    _, model, template, queries, corpus, pairs = trained
    one = openvino_backend.compile_model(model, template, precision="fp32", threads=2)
    many = openvino_backend.compile_model(
        model, template, precision="fp32", threads=2, hint="THROUGHPUT"
    )
    assert one.hint == "LATENCY" and one.queue is None
    assert many.hint == "THROUGHPUT" and many.queue is not None and many.streams >= 1
    budget = {"max_tokens": 256, "max_pairs": 4, "chunk_pairs": 25, "progress": False}
    ref = openvino_backend.score_pairs(one, template, queries, corpus, pairs, **budget)
    got = openvino_backend.score_pairs(many, template, queries, corpus, pairs, **budget)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-5


def test_run_backend_openvino_writes_scores_like_torch(
    trained, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    pytest.importorskip("openvino")
    model_dir, *_, pairs = trained
    torch_out, ov_out = tmp_path / "torch", tmp_path / "ov"
    common = ("--precision", "fp32")
    assert run.main(predict_argv(model_dir, tiny_data, tiny_preprocessed, torch_out, *common)) == 0
    with caplog.at_level("INFO"):
        argv = predict_argv(
            model_dir, tiny_data, tiny_preprocessed, ov_out, "--backend", "openvino"
        )
        argv += ["--prediction_chunk_pairs", "5"]  # queries split across chunk borders
        assert run.main([*argv, *common]) == 0
    assert "predict precision: OpenVINO f32, fp32 score head" in caplog.text
    got, ref = read_scores(ov_out / "scores.tsv"), read_scores(torch_out / "scores.tsv")
    assert np.abs(got - ref).max() < 1e-4
    rho, top1 = agreement(pairs, got, ref)
    assert rho > 0.999 and top1 == 1.0, (rho, top1)


def test_the_converter_sends_no_telemetry():
    """OpenVINO's converter falls back to its no-op telemetry stub."""
    pytest.importorskip("openvino")
    code = (
        "import sys\n"
        "from cross_encoder.reranking import openvino as openvino_backend\n"
        "openvino_backend.import_openvino()\n"
        "import openvino.tools.ovc.telemetry_utils as tu\n"
        "assert tu.tm.__name__.endswith('telemetry_stub'), tu.tm\n"
        "assert sys.modules.get('openvino_telemetry') is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_precision_auto_is_this_packages_choice_not_openvinos(
    trained, tiny_data, tiny_preprocessed, tmp_path
):
    """Without usable AMX (emulated: oneDNN capped at AVX2) auto means f32 for OpenVINO too;
    left to itself OpenVINO takes bf16 from the CPU flags and fails to compile there."""
    pytest.importorskip("openvino")
    model_dir, *_ = trained
    argv = predict_argv(
        model_dir, tiny_data, tiny_preprocessed, tmp_path, "--backend", "openvino",
        "--precision", "auto",
    )  # fmt: skip
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", CROSS_ENCODER_CACHE_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "cross_encoder.run", *argv],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "precision auto -> fp32" in proc.stderr
    assert "predict precision: OpenVINO f32, fp32 score head" in proc.stderr
    assert (tmp_path / "scores.tsv").exists()
