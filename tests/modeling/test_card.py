"""The saved model folder is hub-ready: a model card with the recipe and the dev selection,
``id2label``, the trained max length where sentence-transformers reads it, and
``sentence_transformers.CrossEncoder(path)`` loads every weight and scores as we do."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cross_encoder import run
from cross_encoder.io import iter_corpus, iter_ranking, read_queries
from cross_encoder.modeling import card as model_card
from cross_encoder.preprocess import passage_text


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path_factory) -> Path:
    """A tiny model trained 2 steps by the real CLI, with dev selection every step."""
    out = tmp_path_factory.mktemp("card_run")
    p = tiny_preprocessed
    argv = [
        "--output_dir", str(out / "state"), "--final_model_dir", str(out / "model"),
        "--model_name_or_path", str(tiny_model_dir), "--do_train",
        "--corpus_file", str(p / "corpus"), "--train_query_file", str(p / "train_query"),
        "--train_qrels", str(p / "train_qrels.txt"), "--neg_file", str(tiny_data["neg_file"]),
        "--train_group_size", "4", "--max_len", "48", "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-2", "--head_learning_rate", "1e-3", "--max_steps", "2",
        "--eval_query_file", str(p / "dev_query"), "--eval_file", str(tiny_data["test_file"]),
        "--eval_qrels", str(tiny_data["dev_qrels"]), "--eval_strategy", "steps",
        "--eval_steps", "1", "--save_steps", "1", "--load_best_model_at_end",
        "--precision", "fp32", "--use_cpu", "--seed", "7",
        "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    assert run.main(argv) == 0
    return out / "model"


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_says_what_the_model_is_and_how_it_was_made(trained, tiny_preprocessed):
    card = (trained / "README.md").read_text()
    meta = front_matter(card)
    assert meta["library_name"] == "sentence-transformers"
    assert meta["pipeline_tag"] == "text-ranking"
    assert {"cross-encoder", "reranker", "text-ranking"} <= set(meta["tags"])
    assert "base_model" not in meta  # a local folder is no hub id; the body names it
    summary = json.loads((trained / model_card.SUMMARY_FILE).read_text())
    assert summary["data"]["queries_trained_on"] == 16 and summary["data"]["passages"] == 48
    assert summary["use_title"] is True and summary["max_len"] == 48
    assert f"`{tiny_preprocessed / 'corpus'}` (48 passages" in card
    assert "16 queries with a positive" in card
    for row in (
        "| learning rate | 0.01 (",
        "| score-head learning rate | 0.001 |",
        "| group size | 4 (1 positive + 3 negatives) |",
        "| batch | 4 queries per step",
        "| max_len | 48 tokens",
        "| precision | fp32 |",
        "| seed | 7 |",
        "| training | max 2 steps (2 optimizer steps) |",
    ):
        assert row in card, row
    assert "ranks 1–200 of" in card  # negatives: neg_file top-200, nothing skipped
    sel = summary["selection"]
    assert sel["metric"] == "MRR@10" and sel["kept"] == "best"
    assert [h["step"] for h in sel["evaluations"]] == [1, 2]
    assert sel["best_step"] in (1, 2)
    assert f"best checkpoint: step {sel['best_step']}, MRR@10 {sel['best_metric']:.4f}" in card
    assert f"| {sel['best_step']} (kept) |" in card
    assert "title [SEP] text" in card and "AutoModelForSequenceClassification" in card
    assert f'CrossEncoder("{trained}")' in card


def test_folder_carries_labels_and_the_trained_max_length(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["id2label"] == {"0": "relevance"} and config["label2id"] == {"relevance": 0}
    assert config["sentence_transformers"]["activation_fn"].endswith("Identity")
    tok_config = json.loads((trained / "tokenizer_config.json").read_text())
    assert tok_config["model_max_length"] == 48
    identity = json.loads((trained / "tokenizer_identity.json").read_text())
    assert identity["use_title"] is True


def test_sentence_transformers_loads_every_weight_and_scores_as_we_do(
    trained, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    from safetensors.torch import load_file
    from sentence_transformers import CrossEncoder

    with caplog.at_level(logging.WARNING):
        ce = CrossEncoder(str(trained), device="cpu")
    assert "newly initialized" not in caplog.text and "MISSING" not in caplog.text
    saved = load_file(trained / "model.safetensors")
    params = dict(ce.model.named_parameters())
    assert set(params) == set(saved)
    for name, p in params.items():
        assert torch.equal(p.detach(), saved[name]), name
    assert ce.max_seq_length == 48

    scores = tmp_path / "scores.tsv"
    argv = [
        "--output_dir", str(tmp_path / "work"), "--model_name_or_path", str(trained),
        "--do_predict", "--corpus_file", str(tiny_preprocessed / "corpus"),
        "--test_query_file", str(tiny_preprocessed / "dev_query"),
        "--test_file", str(tiny_data["test_file"]), "--prediction_save_path", str(scores),
        "--max_len", "48", "--precision", "fp32", "--use_cpu", "--report_to", "none",
    ]  # fmt: skip
    assert run.main(argv) == 0
    ours = [line.split("\t") for line in scores.read_text().splitlines()]
    queries = read_queries(tiny_data["dev_queries"])
    sep = ce.tokenizer.sep_token
    passages = {p: passage_text(t, x, sep, True) for p, t, x in iter_corpus(tiny_data["corpus"])}
    pairs = [(r.qid, r.pid) for r in iter_ranking(tiny_data["test_file"])]
    assert [(q, p) for q, p, _ in ours] == pairs
    theirs = ce.predict([(queries[q], passages[p]) for q, p in pairs], batch_size=16)
    np.testing.assert_allclose(
        theirs, np.array([float(s) for *_, s in ours], dtype=np.float32), atol=1e-5
    )


def test_cli_rewrites_the_card_with_evaluation_metrics(trained, tmp_path, capsys):
    import shutil

    folder = shutil.copytree(trained, tmp_path / "model")
    metrics = tmp_path / "dev.metrics.json"
    runs = {"first stage": {"nDCG@10": 0.5, "MRR@10": 0.25}, "reranked": {"nDCG@10": 0.75}}
    metrics.write_text(json.dumps({"n_queries": 6, "runs": runs}))
    argv = ["--model_dir", str(folder), "--metrics", str(metrics)]
    assert model_card.main([*argv, "--base_model", "sentence-transformers/all-MiniLM-L6-v2"]) == 0
    card = (folder / "README.md").read_text()
    assert front_matter(card)["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "dev (6 judged queries):" in card
    assert "| first stage | 0.5000 | 0.2500 |" in card and "| reranked | 0.7500 | — |" in card

    # --output_dir: a copy with the card, the model folder itself untouched
    before = (folder / "README.md").read_text()
    hub = tmp_path / "hub_model"
    assert model_card.main([*argv, "--output_dir", str(hub)]) == 0
    assert (folder / "README.md").read_text() == before
    assert "| reranked | 0.7500 | — |" in (hub / "README.md").read_text()
    assert sorted(p.name for p in hub.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert not list(tmp_path.glob(".hub_model.*"))

    metrics.write_text('{"n_queries": 6}')
    assert model_card.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {metrics}: not a metrics file of cross_encoder.evaluate (no 'runs')"


def test_hub_id_of_the_base_model(tmp_path):
    assert model_card.hub_id("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert model_card.hub_id("microsoft/deberta-v3-base") == "microsoft/deberta-v3-base"
    assert model_card.hub_id(str(tmp_path)) is None
    assert model_card.hub_id(None) is None


def test_card_shows_the_int8_decision():
    d = {
        "accepted": True,
        "reason": "dev MRR@10 0.9000 -> 0.8980 (drop 0.0020 <= 0.005), ...",
        "metric": "MRR@10",
        "full_precision": {"MRR@10": 0.9},
        "int8": {"MRR@10": 0.898},
        "mean_spearman": 0.9951,
        "dev_queries": 100,
        "dev_pairs": 2000,
        "full_precision_path": "torch bf16",
        "speed": {"full_pairs_per_s": 200.0, "int8_pairs_per_s": 410.26, "cpu": "Xeon"},
    }
    text = "\n".join(model_card._quantization_section(d))
    assert "**accepted** — dev MRR@10 0.9000 -> 0.8980" in text
    assert "| dev MRR@10 | 0.9000 | 0.8980 |" in text
    assert "| mean per-query Spearman vs full precision | 1 | 0.9951 |" in text
    assert "| pairs/s (short timing, Xeon) | 200.0 | 410.3 |" in text
    assert model_card._quantization_section(None) == []
