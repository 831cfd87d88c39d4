"""Gathering a sharded rerank (reranking.shards) and the workflow's shard plan: k shard jobs
per ranking (scattergather), gathered in order; the train positives stay one job."""

from __future__ import annotations

import pytest
from conftest import run_snakemake, write_tiny_config

from cross_encoder.reranking import shards


def test_gather_concatenates_in_order(tmp_path):
    parts = []
    for i, text in enumerate(["a\tb\t1.0\n", "", "c\td\t2.5\ne\tf\t-1.0\n"]):
        part = tmp_path / f"p{i}.tsv"
        part.write_text(text)
        parts.append(str(part))
    out = tmp_path / "out" / "scores.tsv"
    assert shards.main(["--output", str(out), *parts]) == 0
    assert out.read_text() == "a\tb\t1.0\nc\td\t2.5\ne\tf\t-1.0\n"


@pytest.mark.parametrize("bad", ["missing", "truncated"])
def test_bad_part_is_a_one_line_error_and_no_output(tmp_path, capsys, bad):
    part = tmp_path / "p.tsv"
    if bad == "truncated":
        part.write_text("a\tb\t1.0\nc\td\t2.")
    out = tmp_path / "scores.tsv"
    assert shards.main(["--output", str(out), str(part)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {part}: ") and "\n" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == ([part] if bad != "missing" else [])


def test_workflow_plans_shard_jobs_and_a_gather(tmp_path, tiny_data, tiny_model_dir):
    config = write_tiny_config(
        tmp_path / "c.yaml", tiny_data, tiny_model_dir, rerank={"shards": 3}, teacher={"shards": 2}
    )
    plan = run_snakemake(tmp_path / "w", config, "-n", "eval", "train_teacher_scores").stdout
    assert plan.count("rule rerank:") == 3 and plan.count("rule gather_rerank:") == 1
    for i in (1, 2, 3):
        assert f"--prediction_shard {i}-of-3" in plan
    assert plan.count("rule teacher_shard:") == 2 and plan.count("rule gather_teacher:") == 1
    assert plan.count("rule teacher_scores:") == 1  # the positives: one job
    assert "train_rerank.2-of-2.txt" in plan
