"""Model selection on dev: the evaluator computes what `cross_encoder.evaluate` computes, the
trainer evaluates every eval_steps and at each epoch end, keeps the best checkpoint as the
final model, stops early, and learning rates per parameter group reach the optimizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cross_encoder import run
from cross_encoder.evaluate import main as evaluate_main
from cross_encoder.io import iter_ranking, write_scores
from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairTemplate
from cross_encoder.reranking.evaluator import RerankEvaluator
from cross_encoder.reranking.predict import score_pairs
from cross_encoder.training.trainer import lr_multipliers


@pytest.fixture(scope="module")
def model_and_data(tiny_model_dir, tiny_preprocessed):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    template = PairTemplate(AutoTokenizer.from_pretrained(tiny_model_dir), 48)
    queries = TokenizedCollection.load(tiny_preprocessed / "dev_query")
    corpus = TokenizedCollection.load(tiny_preprocessed / "corpus")
    return model, template, queries, corpus


def test_evaluator_matches_the_evaluate_cli(model_and_data, tiny_data, tmp_path, capsys):
    model, template, queries, corpus = model_and_data
    ranking, qrels = str(tiny_data["test_file"]), str(tiny_data["dev_qrels"])
    ev = RerankEvaluator(queries, corpus, ranking, qrels, template, topk=8, metrics=["MRR@10"])
    got = ev(model, "cpu")
    # the same reranking through the files and the CLI the workflow uses
    pairs = [(r.qid, r.pid) for r in iter_ranking(ranking, depth=8)]
    scores = score_pairs(model, template, queries, corpus, pairs, progress=False)
    from cross_encoder.reranking.fusion import main as fusion_main

    write_scores(
        tmp_path / "s.tsv", ((q, p, float(s)) for (q, p), s in zip(pairs, scores, strict=True))
    )
    full = tmp_path / "full.tsv"
    assert fusion_main(["--scores", str(tmp_path / "s.tsv"), "--ranking", ranking,
                        "--output_full", str(full)]) == 0  # fmt: skip
    out = tmp_path / "m.json"
    argv = ["--score_file", str(full), "--qrels_file", qrels, "--metrics", "MRR@10"]
    assert evaluate_main([*argv, "--output_json", str(out)]) == 0
    want = json.loads(out.read_text())["runs"]["reranked"]["MRR@10"]
    assert got == {"MRR@10": pytest.approx(want, abs=1e-9)}


def test_evaluator_sample_is_fixed_and_seeded(model_and_data, tiny_data):
    _, template, queries, corpus = model_and_data
    args = (queries, corpus, str(tiny_data["test_file"]), str(tiny_data["dev_qrels"]), template)
    a = RerankEvaluator(*args, topk=5, max_queries=3, seed=1)
    b = RerankEvaluator(*args, topk=5, max_queries=3, seed=1)
    assert len(a.qrels) == 3 and a.pairs == b.pairs
    assert len({q for q, _ in a.pairs}) == 3 and len(a.pairs) <= 15


def test_evaluator_rejects_unrelated_files(model_and_data, tiny_data):
    from cross_encoder.io import InputError

    _, template, queries, corpus = model_and_data
    with pytest.raises(InputError, match="ranks none of the judged queries"):
        RerankEvaluator(
            queries, corpus, str(tiny_data["test_file"]), str(tiny_data["train_qrels"]), template, 5
        )


def test_head_and_layerwise_learning_rates(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    f = lr_multipliers(model, head_lr_ratio=10.0, layer_decay=0.5)
    assert f["classifier.weight"] == 10.0
    assert f["bert.encoder.layer.1.attention.self.query.weight"] == 1.0  # top of 2 layers
    assert f["bert.encoder.layer.0.output.dense.weight"] == 0.5
    assert f["bert.embeddings.word_embeddings.weight"] == 0.25
    assert f["bert.pooler.dense.weight"] == 1.0
    plain = lr_multipliers(model, None, None)
    assert set(plain.values()) == {1.0}


def selection_argv(tiny_model_dir, tiny_data, p: Path, out: Path) -> list[str]:
    return [
        "--output_dir", str(out),
        "--model_name_or_path", str(tiny_model_dir),
        "--do_train",
        "--corpus_file", str(p / "corpus"),
        "--train_query_file", str(p / "train_query"),
        "--train_qrels", str(p / "train_qrels.txt"),
        "--neg_file", str(tiny_data["neg_file"]),
        "--eval_query_file", str(p / "dev_query"),
        "--eval_file", str(tiny_data["test_file"]),
        "--eval_qrels", str(tiny_data["dev_qrels"]),
        "--eval_topk", "12",
        "--train_group_size", "4",
        "--max_len", "48",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "3e-3",
        "--num_train_epochs", "3",
        "--logging_steps", "1",
        "--eval_strategy", "steps",
        "--eval_steps", "3",
        "--save_strategy", "steps",
        "--save_steps", "3",
        "--load_best_model_at_end",
        "--metric_for_best_model", "MRR@10",
        "--report_to", "none",
        "--disable_tqdm", "true",
    ]  # fmt: skip


def test_training_keeps_the_best_dev_checkpoint(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path
):
    out = tmp_path / "out"
    argv = selection_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    assert run.main([*argv, "--head_learning_rate", "1e-2", "--layerwise_lr_decay", "0.8"]) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    evals = [h for h in state["log_history"] if "eval_MRR@10" in h]
    # 16 queries / batch 4 = 4 steps per epoch, 12 in all: steps 3, 6, 9, 12 and the epoch
    # ends 4 and 8 (12 is both)
    assert [h["step"] for h in evals] == [3, 4, 6, 8, 9, 12]
    best = max(evals, key=lambda h: h["eval_MRR@10"])
    assert state["best_metric"] == pytest.approx(best["eval_MRR@10"])
    best_dir = Path(state["best_model_checkpoint"])
    assert best_dir.name == f"checkpoint-{best['step']}"
    final, chosen = load_file(out / "model.safetensors"), load_file(best_dir / "model.safetensors")
    assert all(torch.equal(final[k], chosen[k]) for k in chosen)


def test_early_stopping_stops_training(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path):
    out = tmp_path / "out"
    argv = selection_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    # lr 0: the dev metric never improves after the first evaluation
    argv[argv.index("--learning_rate") + 1] = "0"
    assert run.main([*argv, "--early_stopping_patience", "2"]) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    evals = [h["step"] for h in state["log_history"] if "eval_MRR@10" in h]
    assert evals == [3, 4, 6] and state["global_step"] == 6


def test_metric_for_best_model_must_be_evaluated(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, capsys
):
    argv = selection_argv(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path / "out")
    argv[argv.index("--metric_for_best_model") + 1] = "Recall@5"
    assert run.main(argv) == 2
    assert "is not one of --eval_metrics" in capsys.readouterr().err


def test_eval_files_go_together(tmp_path, capsys):
    argv = ["--output_dir", str(tmp_path), "--model_name_or_path", "m", "--do_train"]
    assert run.main([*argv, "--eval_file", "dev.tsv"]) == 2
    assert "go together" in capsys.readouterr().err
