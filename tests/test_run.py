"""``cross_encoder.run`` on CPU, in-process: argument handling (the seed's command line,
precision flags), a non-finite loss, gradient checkpointing."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest
import torch

from cross_encoder import hardware, run
from cross_encoder.run import parse_args
from cross_encoder.training import trainer

REPO = Path(__file__).resolve().parents[1]

# The seed README's 8-GPU command (RetroMAE examples/cross_encoder), flags verbatim; only
# the {placeholders} are filled in.
SEED_COMMAND = """
--output_dir {path to save model} \\
--model_name_or_path microsoft/deberta-v3-base \\
--fp16 \\
--do_train \\
--corpus_file ./data/DebertaTokenizer_data/corpus \\
--train_query_file ./data/DebertaTokenizer_data/train_query \\
--train_qrels ./data/DebertaTokenizer_data/train_qrels.txt \\
--neg_file {negative file} \\
--max_len 200 \\
--per_device_train_batch_size 1 \\
--train_group_size 65 \\
--gradient_accumulation_steps 2 \\
--warmup_steps 1000 \\
--weight_decay 0.01 \\
--learning_rate 1e-5 \\
--num_train_epochs 4 \\
--do_predict \\
--test_query_file ./data/DebertaTokenizer_data/dev_query \\
--test_file {ranked results of dev queries provided by retriever} \\
--prediction_save_path dev_rerank_score.txt \\
--prediction_topk 300 \\
--dataloader_num_workers 6
"""


def seed_argv(tmp_path: Path) -> list[str]:
    text = (
        SEED_COMMAND.replace("{path to save model}", str(tmp_path / "model"))
        .replace("{negative file}", "negs.tsv")
        .replace("{ranked results of dev queries provided by retriever}", "dev_ranking.tsv")
    )
    return shlex.split(text.replace("\\\n", " "))


def test_seed_command_line_is_accepted(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # --fp16 on a CPU machine
        model_args, data_args, args = parse_args(seed_argv(tmp_path))
    assert model_args.model_name_or_path == "microsoft/deberta-v3-base"
    assert (data_args.max_len, data_args.train_group_size, data_args.prediction_topk) == (
        200,
        65,
        300,
    )
    assert data_args.corpus_id_file == "./data/DebertaTokenizer_data/corpus/mapping_id.txt"
    assert args.do_train and args.do_predict
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (1, 2)
    assert (args.warmup_steps, args.weight_decay, args.learning_rate) == (1000, 0.01, 1e-5)
    assert (args.num_train_epochs, args.dataloader_num_workers) == (4, 6)
    assert args.fp16 == torch.cuda.is_available()


def test_msmarco_config_is_the_seed_recipe(tmp_path):
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "msmarco.yaml").read_text())
    t = cfg["train"]
    assert t["model"] == "microsoft/deberta-v3-base"
    assert (t["per_device_train_batch_size"], t["train_group_size"]) == (1, 65)
    assert (t["gradient_accumulation_steps"], t["warmup_steps"]) == (2, 1000)
    assert (t["weight_decay"], t["learning_rate"], t["num_train_epochs"]) == (0.01, 1e-5, 4)
    assert (t["max_len"], t["nproc"], t["precision"]) == (200, 8, "fp16")
    assert (REPO / t["deepspeed"]).is_file()
    assert cfg["rerank"]["prediction_topk"] == 300
    assert cfg["preprocess"]["tokenizer"] == t["model"]


def _cpu_args(tmp_path, *flags):
    return parse_args(
        ["--output_dir", str(tmp_path), "--model_name_or_path", "m", "--do_train", *flags]
    )[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")
@pytest.mark.parametrize("flags", [[], ["--precision", "auto"]])
def test_precision_auto_on_cpu_is_the_measured_choice(tmp_path, flags, caplog):
    expected = hardware.choose_cpu_precision().precision
    with caplog.at_level("INFO", logger="cross_encoder.hardware"):
        args = _cpu_args(tmp_path, *flags)
    assert args.bf16 == (expected == "bf16") and not args.fp16 and args.use_cpu
    lines = [r.getMessage() for r in caplog.records if "precision auto ->" in r.getMessage()]
    assert len(lines) == 1 and expected in lines[0]  # one line: what and why


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")
@pytest.mark.parametrize("flags", [["--fp16"], ["--precision=fp16"]])
def test_fp16_on_cpu_warns_and_uses_the_auto_choice(tmp_path, flags, caplog):
    expected = hardware.choose_cpu_precision().precision
    with caplog.at_level("WARNING", logger="cross_encoder.hardware"):
        args = _cpu_args(tmp_path, *flags)
    assert "fp16 has no fast CPU path" in caplog.text
    assert not args.fp16 and args.bf16 == (expected == "bf16") and args.use_cpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")
@pytest.mark.parametrize(
    ("flags", "bf16"),
    [(["--bf16"], True), (["--precision", "bf16"], True), (["--precision", "fp32"], False)],
)
def test_forced_precision_on_cpu_is_kept(tmp_path, flags, bf16):
    args = _cpu_args(tmp_path, *flags)
    assert (args.bf16, args.fp16, args.use_cpu) == (bf16, False, True)
    # bf16 on a CPU trains with fused AdamW and float32 master weights (autocast)
    assert args.optim == "adamw_torch_fused"
    assert args.mixed_precision == ("bf16" if bf16 else "no")


def test_precision_contradicting_flag_is_an_error(tmp_path, capsys):
    argv = ["--output_dir", str(tmp_path), "--model_name_or_path", "m", "--do_train"]
    assert run.main([*argv, "--bf16", "--precision", "fp16"]) == 2
    assert "contradicts" in capsys.readouterr().err


def train_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out: Path) -> list[str]:
    p = tiny_preprocessed
    return [
        "--output_dir", str(out),
        "--model_name_or_path", str(tiny_model_dir),
        "--do_train",
        "--corpus_file", str(p / "corpus"),
        "--train_query_file", str(p / "train_query"),
        "--train_qrels", str(p / "train_qrels.txt"),
        "--neg_file", str(tiny_data["neg_file"]),
        "--train_group_size", "4",
        "--max_len", "48",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-2",
        "--num_train_epochs", "2",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
    ]  # fmt: skip


def test_non_finite_loss_stops_the_run_naming_the_step(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, monkeypatch, capsys
):
    real = trainer.grouped_softmax_loss
    calls = []

    def nan_on_third_step(logits, group_size, temperature=None):
        calls.append(1)
        loss = real(logits, group_size, temperature)
        return loss * math.nan if len(calls) == 3 else loss

    monkeypatch.setattr(trainer, "grouped_softmax_loss", nan_on_third_step)
    out = tmp_path / "out"
    rc = run.main(train_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out))
    assert rc == 3
    err = capsys.readouterr().err
    assert "loss is nan at step 3" in err
    assert not (out / "model.safetensors").exists()  # nothing saved from a broken run


def test_gradient_checkpointing_trains(tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path):
    import json

    out = tmp_path / "out"
    argv = train_argv(tiny_model_dir, tiny_data, tiny_preprocessed, out)
    assert run.main([*argv, "--gradient_checkpointing"]) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert (out / "model.safetensors").is_file()


def test_several_trackers_as_one_comma_separated_value(tmp_path):
    """The workflow passes train.report_to "tensorboard, wandb" as one value; each
    integration reaches the Trainer by its own name."""
    _, _, training_args = parse_args(
        ["--model_name_or_path", "m", "--output_dir", str(tmp_path), "--do_predict"]
        + ["--report_to", "tensorboard, wandb"]
    )
    assert training_args.report_to == ["tensorboard", "wandb"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")
def test_require_gpu_without_cuda_stops_with_one_line(tmp_path, capsys):
    """train.use_gpu: true on a machine (or a torch build) without CUDA stops before anything
    is loaded, instead of training on the CPU for days."""
    from cross_encoder import run

    code = run.main(
        ["--output_dir", str(tmp_path / "o"), "--model_name_or_path", str(tmp_path / "none"),
         "--do_train", "--require_gpu"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: --require_gpu: no CUDA GPU"), err
    assert not (tmp_path / "o").exists()


def test_deepspeed_json_with_an_optimizer_block_is_refused(tmp_path):
    """With an optimizer block DeepSpeed would build one parameter group and drop the head's
    learning rate and the no-decay group without a word."""
    pytest.importorskip("deepspeed")
    ds = json.loads((REPO / "config" / "deepspeed" / "zero2.json").read_text())
    assert "optimizer" not in ds
    ds["optimizer"] = {"type": "AdamW", "params": {"lr": "auto"}}
    bad = tmp_path / "ds.json"
    bad.write_text(json.dumps(ds))
    with pytest.raises(ValueError, match='remove the "optimizer" block'):
        _cpu_args(tmp_path, "--deepspeed", str(bad))


@pytest.mark.slow
def test_trains_predicts_and_scores_teacher_pairs_from_a_retromae_folder(
    tiny_model_dir, tiny_data, tmp_path, caplog
):
    """A folder RetroMAE's own preprocess wrote (datasets' save_to_disk, no
    tokenizer_identity.json): run trains and predicts from it, with the legacy warning, and
    the teacher-score command (predict on train_qrels.txt) works on it."""
    from helpers.retromae import retromae_preprocess
    from transformers import AutoTokenizer

    from cross_encoder import io

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    f = retromae_preprocess(tok, tiny_data, tmp_path / "retromae", max_len=32, use_title=True)
    out = tmp_path / "out"
    argv = [
        "--output_dir", str(out), "--model_name_or_path", str(tiny_model_dir), "--do_train",
        "--corpus_file", str(f / "corpus"), "--train_query_file", str(f / "train_query"),
        "--train_qrels", str(f / "train_qrels.txt"), "--neg_file", str(tiny_data["neg_file"]),
        "--train_group_size", "4", "--max_len", "48", "--per_device_train_batch_size", "4",
        "--max_steps", "2", "--save_strategy", "no", "--report_to", "none",
        "--do_predict", "--test_query_file", str(f / "dev_query"),
        "--test_file", str(tiny_data["test_file"]), "--prediction_topk", "12",
        "--prediction_save_path", str(tmp_path / "dev_rerank_score.txt"),
    ]  # fmt: skip
    with caplog.at_level("WARNING"):
        assert run.main(argv) == 0
    assert "no tokenizer_identity.json" in caplog.text and "RetroMAE" in caplog.text
    ranking = list(io.iter_ranking(tiny_data["test_file"], depth=12))
    scores = (tmp_path / "dev_rerank_score.txt").read_text().splitlines()
    assert [s.split("\t")[:2] for s in scores] == [[r.qid, r.pid] for r in ranking]
    teacher = [
        "--output_dir", str(out), "--model_name_or_path", str(out), "--do_predict",
        "--corpus_file", str(f / "corpus"), "--max_len", "48",
        "--test_query_file", str(f / "train_query"), "--test_file", str(f / "train_qrels.txt"),
        "--prediction_save_path", str(tmp_path / "train_qrels_score.txt"), "--report_to", "none",
    ]  # fmt: skip
    assert run.main(teacher) == 0
    n = len((f / "train_qrels.txt").read_text().splitlines())
    assert len(io.read_scores(tmp_path / "train_qrels_score.txt")) == n


def test_predictions_are_the_same_from_every_folder_layout(tiny_model_dir, tiny_data, tmp_path):
    """The same token ids in our folder, an earlier data.parquet folder and RetroMAE's
    save_to_disk folder give the same scores, byte for byte."""
    import pyarrow.parquet as pq
    from helpers.retromae import retromae_preprocess
    from transformers import AutoTokenizer

    from cross_encoder import preprocess
    from cross_encoder.io import collection

    ours = tmp_path / "ours"
    argv = ["--tokenizer_name", str(tiny_model_dir), "--max_seq_length", "32"]
    argv += ["--output_dir", str(ours), "--corpus_file", str(tiny_data["corpus"])]
    argv += ["--train_query_file", str(tiny_data["train_queries"])]
    argv += ["--dev_query_file", str(tiny_data["dev_queries"])]
    assert preprocess.main([*argv, "--train_qrels", str(tiny_data["train_qrels"])]) == 0
    parquet = tmp_path / "parquet"
    for name in ("corpus", "dev_query"):
        (parquet / name).mkdir(parents=True)
        table, _ = collection.read_table(ours / name)
        pq.write_table(table, parquet / name / "data.parquet", compression="zstd")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    theirs = retromae_preprocess(tok, tiny_data, tmp_path / "retromae", max_len=32)
    outputs = []
    for folder in (ours, parquet, theirs):
        out = tmp_path / f"{folder.name}.scores.txt"
        argv = ["--output_dir", str(tmp_path / "m"), "--model_name_or_path", str(tiny_model_dir)]
        argv += ["--do_predict", "--corpus_file", str(folder / "corpus"), "--max_len", "48"]
        argv += ["--test_query_file", str(folder / "dev_query")]
        argv += ["--test_file", str(tiny_data["test_file"]), "--prediction_save_path", str(out)]
        assert run.main([*argv, "--report_to", "none", "--precision", "fp32"]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
