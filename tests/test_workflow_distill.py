"""`snakemake train_teacher_scores` and `snakemake distill` on tiny data, end to end; the
teacher scores and a split's rerank scored by 2 shard jobs each equal the one-job files."""

import json
import re

import pytest
import yaml
from conftest import run_snakemake as smk
from conftest import write_tiny_config
from test_workflow import planned_jobs

from cross_encoder import io

pytestmark = pytest.mark.slow


def test_teacher_scores_then_distill(tmp_path, tiny_data, tiny_model_dir):
    settings = dict(
        # 7-pair chunks: the train ranking's 80 pairs (16 queries x top 5) are 12 chunks, so
        # that 2 shards each score 6, with queries split across chunk and shard borders
        rerank={"prediction_topk": 10, "chunk_pairs": 7},
        distill={
            "model": str(tiny_model_dir),
            "batch_size": 4,
            "group_size": 3,
            "max_len": 32,
            "learning_rate": 1e-3,
        },
    )
    config = write_tiny_config(tmp_path / "tiny.yaml", tiny_data, tiny_model_dir, **settings)
    work = tmp_path / "work"
    out = work / "results" / "tiny"

    dev_scores = "results/tiny/rerank/dev.scores.tsv"  # one job, as the shards below
    proc = smk(work, config, "train_teacher_scores", dev_scores)
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
    # teacher scores stay in full precision although rerank.quantize is auto (the default)
    # and the dev rerank beside them made an int8 decision: the scoring logs say no int8
    assert (out / "rerank" / "quantization.json").exists()  # the dev rerank's decision
    for kind in ("qrels", "rerank"):
        assert "quantize" not in (out / "logs" / f"teacher_scores_{kind}.log").read_text()
    # teacher.quantize asks for int8: the teacher scores read the decision
    int8_settings = yaml.safe_load(config.read_text())
    int8_settings.setdefault("teacher", {})["quantize"] = True
    with_int8 = config.with_name("int8.yaml")
    with_int8.write_text(yaml.safe_dump(int8_settings))
    proc = smk(work, with_int8, "-n", "-p", "train_teacher_scores")
    # (the dev rerank above already made the decision: only the teacher reruns, reading it)
    assert "teacher_scores" in planned_jobs(proc.stdout)
    assert "--quantize auto" in proc.stdout and "quantization.json" in proc.stdout

    # The same trained model, the train ranking's teacher scores and the dev rerank scored by
    # 2 shard jobs each (scattergather) and gathered: the one-job files, byte for byte.
    one_job = {
        "teacher": (teacher / "train_rerank_score.txt").read_bytes(),
        "rerank": (out / "rerank" / "dev.scores.tsv").read_bytes(),
    }
    (teacher / "train_rerank_score.txt").unlink()
    (out / "rerank" / "dev.scores.tsv").unlink()
    sharded = write_tiny_config(
        tmp_path / "sharded.yaml",
        tiny_data,
        tiny_model_dir,
        teacher={"shards": 2},
        **{**settings, "rerank": {**settings["rerank"], "shards": 2}},
    )
    proc = smk(work, sharded, "results/tiny/teacher/train_rerank_score.txt", dev_scores)
    jobs = proc.stdout + proc.stderr
    for rule in ("teacher_shard", "gather_teacher", "rerank", "gather_rerank"):
        assert f"rule {rule}:" in jobs
    assert "rule train:" not in jobs and "rule teacher_scores:" not in jobs  # model reused
    # each shard scored its share of the chunks: 80 pairs = 12 chunks, 60 pairs = 9
    for log, chunks, n in [("teacher_scores_rerank", (6, 6), 80), ("rerank_dev", (4, 5), 60)]:
        shard_logs = [(out / "logs" / f"{log}.{i}-of-2.log").read_text() for i in (1, 2)]
        for i, text in enumerate(shard_logs, 1):
            assert f"shard {i} of 2: {chunks[i - 1]} chunks of 7 pairs" in text, text[-2000:]
        assert sum(int(x) for t in shard_logs for x in re.findall(r"scored (\d+) pairs", t)) == n
    assert (teacher / "train_rerank_score.txt").read_bytes() == one_job["teacher"]
    assert (out / "rerank" / "dev.scores.tsv").read_bytes() == one_job["rerank"]
    assert not list((teacher / "shards").glob("*.txt"))  # the shards were temp()
    config = sharded  # what follows reuses the gathered files

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
