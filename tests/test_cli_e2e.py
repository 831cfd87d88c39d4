"""The seed's three command lines, run as users run them, on tiny MS MARCO-format files."""

import shutil
import subprocess
import sys

import pytest
from transformers import AutoModelForSequenceClassification

from cross_encoder import io

pytestmark = pytest.mark.slow


def run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_seed_commands(tmp_path, tiny_data, tiny_model_dir):
    data = tmp_path / "data"
    data.mkdir()
    for key, name in [
        ("corpus", "corpus.tsv"),
        ("train_queries", "train.query.txt"),
        ("dev_queries", "dev.query.txt"),
        ("train_qrels", "qrels.train.tsv"),
        ("dev_qrels", "qrels.dev.tsv"),
    ]:
        shutil.copy(tiny_data[key], data / name)
    py = sys.executable
    # 1. python preprocess.py --tokenizer_name ... --max_seq_length ... --output_dir ... --use_title
    run(
        [py, "-m", "cross_encoder.preprocess", "--tokenizer_name", str(tiny_model_dir)]
        + ["--max_seq_length", "32", "--output_dir", "./data/Tok_data", "--use_title"],
        tmp_path,
    )
    # first stage: BM25 ranking of dev queries and hard negatives of train queries
    for split in ("train", "dev"):
        run(
            [py, "-m", "cross_encoder.first_stage.bm25", "--corpus_file", "data/corpus.tsv"]
            + ["--query_file", f"data/{split}.query.txt", "--depth", "10"]
            + ["--output_ranking", f"{split}_ranking.tsv", "--index_dir", "bm25_index"],
            tmp_path,
        )
    run(
        [py, "-m", "cross_encoder.first_stage.negatives", "--ranking_file", "train_ranking.tsv"]
        + ["--qrels_file", "data/qrels.train.tsv", "--output_file", "negs.tsv"],
        tmp_path,
    )
    # 2. torchrun ... -m cross_encoder.run --do_train ... --do_predict ...
    tok = "./data/Tok_data"
    run(
        [py, "-m", "cross_encoder.run", "--output_dir", "model"]
        + ["--model_name_or_path", str(tiny_model_dir), "--do_train"]
        + ["--corpus_file", f"{tok}/corpus", "--train_query_file", f"{tok}/train_query"]
        + ["--train_qrels", f"{tok}/train_qrels.txt", "--neg_file", "negs.tsv"]
        + ["--max_len", "48", "--per_device_train_batch_size", "2", "--train_group_size", "4"]
        + ["--learning_rate", "1e-3", "--max_steps", "4", "--report_to", "none"]
        + ["--do_predict", "--test_query_file", f"{tok}/dev_query"]
        + ["--test_file", "dev_ranking.tsv", "--prediction_save_path", "dev_rerank_score.txt"]
        + ["--prediction_topk", "5", "--dataloader_num_workers", "0"],
        tmp_path,
    )
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert model.config.num_labels == 1
    assert (tmp_path / "model" / "model.safetensors").exists()
    scores = (tmp_path / "dev_rerank_score.txt").read_text().splitlines()
    ranking = [r for r in io.iter_ranking(tmp_path / "dev_ranking.tsv", depth=5)]
    assert [line.split("\t")[:2] for line in scores] == [[r.qid, r.pid] for r in ranking]
    assert all(float(line.split("\t")[2]) == float(line.split("\t")[2]) for line in scores)
    # the teacher-score command: predict-only with the trained reranker on train qrels
    run(
        [py, "-m", "cross_encoder.run", "--output_dir", "model"]
        + ["--model_name_or_path", "model", "--corpus_file", f"{tok}/corpus"]
        + ["--max_len", "48", "--do_predict", "--test_query_file", f"{tok}/train_query"]
        + ["--test_file", f"{tok}/train_qrels.txt"]
        + ["--prediction_save_path", "train_qrels_score.txt"],
        tmp_path,
    )
    n_qrels = len((tmp_path / tok / "train_qrels.txt").read_text().splitlines())
    assert len((tmp_path / "train_qrels_score.txt").read_text().splitlines()) == n_qrels
    # 3. python test.py --score_file dev_rerank_score.txt --qrels_file ./data/qrels.dev.tsv
    proc = run(
        [py, "-m", "cross_encoder.evaluate", "--score_file", "dev_rerank_score.txt"]
        + ["--qrels_file", "./data/qrels.dev.tsv"],
        tmp_path,
    )
    assert "MRR@10" in proc.stdout
    assert (tmp_path / "dev_rerank_score.txt.ranked_results").exists()


def test_bad_input_one_line_error(tmp_path, tiny_model_dir):
    (tmp_path / "negs.tsv").write_text("q1 no tab here\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cross_encoder.first_stage.negatives", "--ranking_file", "negs.tsv"]
        + ["--qrels_file", "negs.tsv", "--output_file", "out.tsv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: negs.tsv:1:")
    assert not (tmp_path / "out.tsv").exists()


def test_every_module_the_readme_runs_still_runs():
    """Each ``python -m cross_encoder.X`` line of the README (the seed's three, the first
    stage, the model card, the synthetic data) answers ``--help``, whatever package the code
    lives in now."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    modules = sorted(set(re.findall(r"python -m (cross_encoder(?:\.\w+)+)", readme)))
    assert {"cross_encoder.preprocess", "cross_encoder.run", "cross_encoder.evaluate"} <= set(
        modules
    )
    for module in modules:
        proc = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, (module, proc.stderr[-2000:])
        assert "usage" in proc.stdout.lower(), module
