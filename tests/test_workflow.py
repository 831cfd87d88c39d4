"""The real Snakemake workflow on tiny data, in a temporary working directory."""

import json
import shutil
import subprocess

import pytest
import yaml
from conftest import REPO, snakemake_cmd, workflow_env, write_tiny_config
from conftest import run_snakemake as smk

pytestmark = pytest.mark.slow


def planned_jobs(plan: str) -> set[str]:
    """Rule names in the 'Job stats' table of a dry run."""
    if "Job stats:" not in plan:
        return set()
    table = plan.split("Job stats:")[1].split("\ntotal")[0].splitlines()[3:]
    return {line.split()[0] for line in table if line.strip()}


def test_lint():
    proc = subprocess.run(
        snakemake_cmd(REPO, REPO / "config" / "config.yaml", "--lint"),
        capture_output=True,
        text=True,
        env=workflow_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_config_plans_every_stage(tmp_path):
    proc = subprocess.run(
        snakemake_cmd(tmp_path, REPO / "config" / "config.yaml", "-n", "eval"),
        capture_output=True,
        text=True,
        env=workflow_env(),
    )
    assert proc.returncode == 0, proc.stderr
    for rule in ("generate_synthetic", "preprocess", "bm25_index", "train_cross_encoder"):
        assert rule in proc.stdout


def test_nested_config_overrides_on_the_command_line(tmp_path):
    """Snakemake 9 hands values inside --config key='{...}' over as strings; the schema's
    numbers and booleans still arrive as numbers and booleans, and a real typo still fails."""
    cmd = snakemake_cmd(tmp_path, REPO / "config" / "config.yaml", "-n", "-p", "eval")
    ok = cmd + ["--config", 'train={"learning_rate": 3e-5, "trust_remote_code": "true"}']
    proc = subprocess.run(ok, capture_output=True, text=True, env=workflow_env())
    assert proc.returncode == 0, proc.stderr
    assert "--learning_rate 3e-05" in proc.stdout and "--trust_remote_code" in proc.stdout
    bad = cmd + ["--config", 'train={"learning_rate": "fast"}']
    proc = subprocess.run(bad, capture_output=True, text=True, env=workflow_env())
    assert proc.returncode != 0
    assert "train.learning_rate: 'fast' is not of type 'number'" in proc.stderr + proc.stdout


def test_eval_end_to_end_then_only_stale_outputs_rerun(tmp_path, tiny_config):
    config = yaml.safe_load(tiny_config.read_text())
    config["train"]["report_to"] = "tensorboard"
    tiny_config.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    proc = smk(work, tiny_config, "eval")
    out = work / "results" / "tiny"
    assert "reranked" in proc.stdout and "first stage" in proc.stdout
    # every row tested against the first stage; rows selected/tuned on dev say so
    assert "* differs from 'first stage' at p < 0.05: two-sided paired t-test" in proc.stdout
    assert "† reranked: checkpoint selected on up to" in proc.stdout
    assert "fusion tuned on these queries" in proc.stdout
    metrics = json.loads((out / "eval" / "dev.metrics.json").read_text())
    assert metrics["significance"]["n_resamples"] == 10_000
    assert set(metrics["significance"]["rows"]) == set(metrics["runs"]) - {"first stage"}
    runs = set(metrics["runs"])
    assert {"first stage", "reranked"} < runs
    # the fused row names the setting chosen on dev (rerank/fusion.json)
    (fused,) = runs - {"first stage", "reranked"}
    assert fused.startswith("fused (") and fused.endswith("chosen on dev)")
    # the report works right after the main job: its figures are part of `eval`
    report = subprocess.run(
        snakemake_cmd(work, tiny_config, "--report", "report.html"),
        capture_output=True,
        text=True,
        env=workflow_env(),
    )
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    assert (work / "report.html").stat().st_size > 10_000
    # train.report_to: tensorboard -> the loss curve lands in the run folder
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert (out / "model" / "model.safetensors").exists()
    assert (out / "rerank" / "dev.scores.tsv").exists()
    assert "SLURM_JOB_ID=none" in (out / "logs" / "preprocess_corpus.log").read_text()
    # nothing is stale: only the table-printing target runs again
    assert planned_jobs(smk(work, tiny_config, "-n", "eval").stdout) == {"eval"}
    check_split_plans(work, tmp_path, config)
    # the model as uploaded: a copy whose card carries this run's metrics
    card = (out / "hub_model" / "README.md").read_text()
    assert "## Evaluation" in card and "dev (" in card
    assert (out / "hub_model" / "model.safetensors").exists()
    # only an evaluation setting changes: only evaluation and what shows it rerun
    config = yaml.safe_load(tiny_config.read_text())
    config["evaluate"]["metrics"] = ["MRR@10", "nDCG@10"]
    tiny_config.write_text(yaml.safe_dump(config))
    assert planned_jobs(smk(work, tiny_config, "-n", "eval").stdout) == {
        "eval",
        "evaluate",
        "report_metrics",
        "report_delta",
        "report_significance",
        "hub_model",
    }
    # rerank.quantize auto (the default): the int8 decision is recorded, shown in the card,
    # and made again only when what it depends on changes (here a threshold)
    decision = json.loads((out / "rerank" / "quantization.json").read_text())
    assert decision["mode"] == "auto" and isinstance(decision["accepted"], bool)
    assert decision["reason"] and decision["dev_pairs"] > 0
    assert (out / "rerank" / "int8").is_dir() == decision["accepted"]
    assert "## int8 (static, OpenVINO + NNCF)" in card
    config["rerank"]["quantization"] = {"min_spearman": 0.5}
    tiny_config.write_text(yaml.safe_dump(config))
    plan = planned_jobs(smk(work, tiny_config, "-n", "eval").stdout)
    assert {"quantize", "rerank"} <= plan and "train_cross_encoder" not in plan

    # compare: this run and a copy of it, side by side (identical: p = 1, no mark)
    shutil.copytree(out / "eval", work / "results" / "copy" / "eval")
    proc = smk(work, tiny_config, "compare", "--config", 'compare={"runs": ["tiny", "copy"]}')
    assert "queries judged by every run" in proc.stdout
    res = json.loads((work / "results" / "compare" / "tiny_vs_copy" / "compare.json").read_text())
    row = res["splits"]["dev"]["significance"]["rows"]["copy"]["MRR@10"]
    assert row["p_t"] == 1.0 and not row["significant"]


def check_split_plans(work, tmp_path, config):
    """On the finished run: a new test split tokenizes, retrieves, reranks and evaluates only
    that split (no re-tokenized corpus, no training); new train queries retrain."""
    data = config["data"]
    test_q, test_qrels = tmp_path / "test.query.txt", tmp_path / "qrels.test.tsv"
    shutil.copyfile(data["dev_queries"], test_q)
    shutil.copyfile(data["dev_qrels"], test_qrels)
    with_test = {
        **config,
        "data": {**data, "test_queries": str(test_q), "test_qrels": str(test_qrels)},
        "evaluate": {**config["evaluate"], "splits": ["dev", "test"]},
    }
    path = tmp_path / "with_test.yaml"
    path.write_text(yaml.safe_dump(with_test))
    plan = smk(work, path, "-n", "eval").stdout
    assert planned_jobs(plan) == {
        "preprocess_queries",
        "retrieve_bm25",
        "rerank",
        "rerank_fusion",
        "evaluate",
        "report_metrics",
        "report_delta",
        "report_significance",
        "hub_model",
        "eval",
    }
    # one job each for test (the report and card show every split)
    assert "wildcards: split=dev" not in plan and plan.count("wildcards: split=test") >= 4
    train_q = tmp_path / "train.query.txt"
    shutil.copyfile(data["train_queries"], train_q)  # newer
    new_train = {**config, "data": {**data, "train_queries": str(train_q)}}
    path.write_text(yaml.safe_dump(new_train))
    jobs = planned_jobs(smk(work, path, "-n", "eval").stdout)
    assert {"preprocess_train", "train_cross_encoder", "rerank", "evaluate"} <= jobs
    assert "preprocess_corpus" not in jobs and "preprocess_queries" not in jobs


def test_a_test_split_left_out_is_said(tmp_path):
    cmd = snakemake_cmd(tmp_path, REPO / "config" / "config.yaml", "-n", "eval")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=workflow_env())
    assert proc.returncode == 0, proc.stderr
    assert "warning: evaluate.splits" not in proc.stderr  # the demo evaluates dev and test
    assert "eval/test.table.txt" in proc.stdout
    only_dev = cmd + ["--config", 'evaluate={"splits": ["dev"]}']
    proc = subprocess.run(only_dev, capture_output=True, text=True, env=workflow_env())
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: evaluate.splits")]
    assert warnings and "leaves out the test split the data provides" in warnings[0]


def test_config_typo_is_rejected(tmp_path, tiny_data, tiny_model_dir):
    bad = write_tiny_config(tmp_path / "bad.yaml", tiny_data, tiny_model_dir, trian={"x": 1})
    proc = smk(tmp_path / "w", bad, "-n", "eval", check=False)
    assert proc.returncode != 0
    assert "trian" in proc.stdout + proc.stderr
