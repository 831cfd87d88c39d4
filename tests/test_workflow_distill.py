"""`snakemake train_teacher_scores` and `snakemake distill` on tiny data, end to end."""

import json

import pytest
import yaml
from conftest import run_snakemake as smk
from conftest import write_tiny_config
from test_workflow import planned_jobs

from cross_encoder import io

pytestmark = pytest.mark.slow


def test_teacher_scores_then_distill(tmp_path, tiny_data, tiny_model_dir):
    config = write_tiny_config(
        tmp_path / "tiny.yaml",
        tiny_data,
        tiny_model_dir,
        distill={
            "model": str(tiny_model_dir),
            "batch_size": 4,
            "group_size": 3,
            "max_len": 32,
            "learning_rate": 1e-3,
        },
    )
    work = tmp_path / "work"
    out = work / "results" / "tiny"

    proc = smk(work, config, "train_teacher_scores")
    assert "has a score" in proc.stdout
    assert "distill_bi_encoder" not in proc.stdout
    teacher = out / "teacher"
    pos = io.positives(io.read_qrels(tiny_data["train_qrels"]))
    qrels_scores = io.read_scores(teacher / "train_qrels_score.txt")
    assert {q: list(v) for q, v in qrels_scores.items()} == pos
    for line in (teacher / "train_rerank_score.txt").read_text().splitlines():
        qid, pid, score = line.split("\t")
        float(score)  # plain float, no [x]
    rerank = io.read_scores(teacher / "train_rerank_score.txt")
    assert all(len(v) == 5 for v in rerank.values())  # teacher.topk = sample_neg_from_topk
    negs = io.read_neg_file(teacher / "train.negs.tsv")
    assert all(p in rerank[q] for q, ps in negs.items() for p in ps)
    check = json.loads((teacher / "check.json").read_text())
    assert check["sample_neg_from_topk"] == 5 and check["missing_negative_scores"] == 0
    # teacher scores stay in full precision although rerank.quantize is auto (the default):
    # no int8 decision was needed, none was made, and the scoring logs say no int8
    assert not (out / "rerank" / "quantization.json").exists()
    for kind in ("qrels", "rerank"):
        assert "quantize" not in (out / "logs" / f"teacher_scores_{kind}.log").read_text()
    # teacher.quantize asks for int8: the decision comes first and the teacher reads it
    settings = yaml.safe_load(config.read_text())
    settings.setdefault("teacher", {})["quantize"] = True
    with_int8 = config.with_name("int8.yaml")
    with_int8.write_text(yaml.safe_dump(settings))
    proc = smk(work, with_int8, "-n", "-p", "train_teacher_scores")
    assert {"quantize", "teacher_scores"} <= planned_jobs(proc.stdout)
    assert "--quantize auto" in proc.stdout and "quantization.json" in proc.stdout

    proc = smk(work, config, "distill")
    for row in ("first stage (bm25)", "dense before distillation", "dense after distillation"):
        assert row in proc.stdout
    assert "reranked (top 10)" in proc.stdout
    metrics = json.loads((out / "distill" / "eval" / "dev.metrics.json").read_text())
    assert len(metrics["runs"]) == 4
    assert (out / "distill" / "model" / "model.safetensors").exists()
    assert (out / "distill" / "model" / "modules.json").exists()
    # the undistilled tiny model is not the first stage's dense model: encoded on its own
    assert (out / "distill" / "base" / "dev.dense.tsv").exists()
    assert planned_jobs(smk(work, config, "-n", "distill").stdout) == {"distill"}
