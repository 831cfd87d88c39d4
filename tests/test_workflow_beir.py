"""Dry runs of the BEIR source: data_dir given (read in place) or null (download rule).
Nothing is downloaded: a dry run only plans."""

import subprocess

import yaml
from conftest import REPO, snakemake_cmd, workflow_env
from helpers.beir import make_beir
from test_workflow import planned_jobs


def beir_config(path, **overrides):
    config = yaml.safe_load((REPO / "config" / "scifact.yaml").read_text())
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


def dry_run(workdir, config, *args):
    proc = subprocess.run(
        snakemake_cmd(workdir, config, "-n", *args),
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_data_dir_is_read_in_place(tmp_path):
    data = make_beir(tmp_path / "scifact")
    config = beir_config(tmp_path / "c.yaml")
    out = dry_run(tmp_path / "w", config, "--config", f"data_dir={data}")
    jobs = planned_jobs(out)
    assert {"beir_split", "preprocess_corpus", "dense_index", "fuse_hybrid"} <= jobs
    assert {"preprocess_train", "preprocess_queries", "train_cross_encoder"} <= jobs
    assert {"report_metrics", "report_delta", "report_loss"} <= jobs
    assert "download" not in jobs
    assert f"{data}/corpus.jsonl" in out  # the corpus is not copied
    assert "--n_dev 100 --seed 0" in out


def test_no_data_dir_plans_the_download(tmp_path):
    config = beir_config(tmp_path / "c.yaml")
    out = dry_run(tmp_path / "w", config)
    jobs = planned_jobs(out)
    assert {"download", "beir_split", "evaluate"} <= jobs
    assert "resources/beir/scifact/corpus.jsonl" in out
    assert "cross_encoder.data.download --dataset scifact" in out


def test_fusion_stage_is_planned_when_configured(tmp_path):
    data = make_beir(tmp_path / "scifact")
    config = beir_config(
        tmp_path / "c.yaml",
        rerank={"prediction_topk": 20, "fuse_with_first_stage": {"method": "rrf", "weight": 2}},
    )
    out = dry_run(tmp_path / "w", config, "--config", f"data_dir={data}")
    assert "rerank_fusion" in planned_jobs(out)
    assert "--method rrf --weight 2" in out
