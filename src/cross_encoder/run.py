"""Train a cross-encoder and/or rerank a ranking with it: RetroMAE's ``cross_encoder.run``.

    torchrun --nproc_per_node 8 -m cross_encoder.run --output_dir out \\
        --model_name_or_path microsoft/deberta-v3-base --fp16 --do_train \\
        --corpus_file data/corpus --train_query_file data/train_query \\
        --train_qrels data/train_qrels.txt --neg_file negs.tsv --max_len 200 \\
        --train_group_size 65 --do_predict --test_query_file data/dev_query \\
        --test_file dev_ranking.tsv --prediction_save_path dev_rerank_score.txt

Every HF ``TrainingArguments`` flag works (``--deepspeed``, ``--gradient_checkpointing``...).
Training resumes from the last checkpoint in ``--output_dir``. Predict writes
``qid\\tpid\\tscore`` (plain float32 text) in test_file order.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from .arguments import CrossEncoderTrainingArguments, DataArguments, ModelArguments
from .io import InputError, cli, iter_ranking, positives, read_neg_file, read_qrels, setup_logging

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None):
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DataArguments, CrossEncoderTrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def load_model(model_args: ModelArguments):
    """The model in float32, whatever dtype it was saved in: transformers 5 loads a bf16
    checkpoint (what DeepSpeed bf16 training saves) as bf16, which would make AMP training
    update bf16 weights and predict on a CPU without AMX run ~6x slower. Mixed precision is
    autocast's job in training, and :func:`predict.cast_for_inference`'s in CPU predict."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from .models import resolve_model

    name = resolve_model(model_args.model_name_or_path)
    try:
        config = AutoConfig.from_pretrained(
            model_args.config_name or name,
            num_labels=1,
            cache_dir=model_args.cache_dir,
            trust_remote_code=model_args.trust_remote_code,
        )
        return AutoModelForSequenceClassification.from_pretrained(
            name,
            config=config,
            cache_dir=model_args.cache_dir,
            trust_remote_code=model_args.trust_remote_code,
            use_safetensors=True,
            dtype=torch.float32,
        )
    except OSError as e:
        raise InputError(name, f"cannot load model: {str(e).splitlines()[0]}") from None


def log_peak_gpu_memory(stage: str) -> None:
    """Log ``torch.cuda.max_memory_allocated`` of this rank (CUDA only)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = torch.cuda.max_memory_allocated()
        logger.info("%s peak GPU memory: %.2f GiB (rank-local)", stage, peak / 2**30)


def _require(value: str | None, flag: str, why: str) -> str:
    if not value:
        raise InputError(None, f"{flag} is required {why}")
    if not os.path.exists(value):
        raise InputError(value, f"no such file or folder (given as {flag})")
    return value


def check_ids(path: str, ids, collection, what: str, fatal_if_all: bool = True) -> set[str]:
    """Return the ids missing from ``collection``; error if none are present, warn if some."""
    ids = list(ids)
    missing = {i for i in ids if i not in collection}
    if missing and fatal_if_all and len(missing) == len(set(ids)):
        raise InputError(
            path,
            f"none of its {what} ids are in {collection.path} (e.g. {next(iter(missing))!r}); "
            "check that the files belong together",
        )
    if missing:
        logger.warning(
            "%s: %d %s ids are not in %s; skipped", path, len(missing), what, collection.path
        )
    return missing


def _checkpoint_problem(path: Path, world_size: int) -> str | None:
    """Why ``path`` cannot be resumed from (None if it can). HF writes a checkpoint's
    ``trainer_state.json`` last, so a run killed while saving leaves it missing or cut."""
    import json

    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "no complete trainer_state.json (killed while saving?)"
    if not (any(path.glob("*.safetensors")) or any(path.glob("global_step*"))):
        return "no model weights"
    latest = path / "latest"
    if latest.exists() and not (path / latest.read_text().strip()).is_dir():
        return "DeepSpeed 'latest' names a missing folder"
    rng = (
        ["rng_state.pth"] if world_size == 1 else [f"rng_state_{i}.pth" for i in range(world_size)]
    )
    missing = [r for r in rng if not (path / r).exists()]
    if missing:
        logger.warning(
            "%s lacks %s (another number of processes?): resuming without restoring those RNG "
            "states, so dropout will not repeat an uninterrupted run exactly",
            path,
            ", ".join(missing),
        )
    return None


def last_complete_checkpoint(output_dir: str, world_size: int = 1) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that a run can resume from; incomplete
    ones (a run killed while saving) are skipped with a warning."""
    import re

    found = []
    for p in Path(output_dir).iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    for _, p in sorted(found, reverse=True):
        why = _checkpoint_problem(p, world_size)
        if why is None:
            return str(p)
        logger.warning("skipping %s: %s", p, why)
    return None


def build_evaluator(data_args, training_args, corpus, template):
    """The dev reranking that selects the checkpoint (None without --eval_file)."""
    from transformers.trainer_utils import IntervalStrategy

    from .collection import TokenizedCollection
    from .selection import RerankEvaluator

    if not data_args.eval_file:
        logger.warning(
            "no dev ranking and qrels (--eval_query_file/--eval_file/--eval_qrels): the final "
            "model is the last checkpoint, not one selected on dev"
        )
        return None
    why = "with --eval_file"
    queries = TokenizedCollection.load(
        _require(data_args.eval_query_file, "--eval_query_file", why),
        data_args.eval_query_id_file,
    )
    evaluator = RerankEvaluator(
        queries,
        corpus,
        _require(data_args.eval_file, "--eval_file", why),
        _require(data_args.eval_qrels, "--eval_qrels", why),
        template,
        topk=data_args.eval_topk,
        metrics=[m.strip() for m in data_args.eval_metrics.split(",") if m.strip()],
        max_queries=data_args.eval_max_queries,
        seed=training_args.seed,
        max_tokens=training_args.prediction_batch_tokens,
        max_pairs=max(training_args.per_device_eval_batch_size, 1),
    )
    if training_args.eval_strategy == IntervalStrategy.NO:
        logger.info("--eval_file without --eval_strategy: evaluating at the end of each epoch")
        training_args.eval_strategy = IntervalStrategy.EPOCH
    if training_args.metric_for_best_model in (None, "loss", "eval_loss"):
        training_args.metric_for_best_model = evaluator.metrics[0]
        training_args.greater_is_better = True
    if training_args.metric_for_best_model.removeprefix("eval_") not in evaluator.metrics:
        raise InputError(
            None,
            f"--metric_for_best_model {training_args.metric_for_best_model} is not one of "
            f"--eval_metrics {data_args.eval_metrics}",
        )
    return evaluator


def check_tokenization(model_args, data_args, training_args, tokenizer) -> None:
    """Stop with one line (exit 2) before anything is read or written when a tokenized folder
    was made by another tokenizer than the model's (:mod:`cross_encoder.tokenizer_identity`).
    Predicting with a trained model also checks the corpus's ``use_title`` against the one
    it was trained on (recorded in the model folder)."""
    from . import tokenizer_identity
    from .models import resolve_model

    folders: dict[str, str | None] = {}
    if training_args.do_train:
        folders["corpus_file"] = data_args.corpus_file
        folders["train_query_file"] = data_args.train_query_file
        folders["eval_query_file"] = data_args.eval_query_file
    if training_args.do_predict:
        folders["corpus_file"] = data_args.corpus_file
        folders["test_query_file"] = data_args.test_query_file
    use_title = None
    model_dir = Path(resolve_model(model_args.model_name_or_path))
    if not training_args.do_train and model_dir.is_dir():
        trained = tokenizer_identity.read(model_dir)
        use_title = trained.get("use_title") if trained else None
    tokenizer_identity.check_folders(
        folders,
        tokenizer,
        model_args.allow_tokenizer_mismatch,
        model=model_args.model_name_or_path,
        name=model_args.tokenizer_name or model_args.model_name_or_path,
        use_title=use_title,
    )


def train(model_args, data_args, training_args, tokenizer, template, predict_template):
    from . import model_card, tokenizer_identity
    from .collection import TokenizedCollection
    from .data import GroupCollator, TrainDataset
    from .trainer import CrossEncoderTrainer

    why = "with --do_train"
    corpus = TokenizedCollection.load(
        _require(data_args.corpus_file, "--corpus_file", why), data_args.corpus_id_file
    )
    queries = TokenizedCollection.load(
        _require(data_args.train_query_file, "--train_query_file", why),
        data_args.train_query_id_file,
    )
    qrels_path = _require(data_args.train_qrels, "--train_qrels", why)
    pos = positives(read_qrels(qrels_path))
    check_ids(qrels_path, pos, queries, "query")
    missing_p = check_ids(qrels_path, {p for v in pos.values() for p in v}, corpus, "passage")
    pos = {q: [p for p in v if p not in missing_p] for q, v in pos.items() if q in queries}
    pos = {q: v for q, v in pos.items() if v}
    negs: dict[str, list[str]] = {}
    if data_args.neg_file:
        neg_path = _require(data_args.neg_file, "--neg_file", why)
        negs = read_neg_file(neg_path)
        bad = check_ids(neg_path, {p for v in negs.values() for p in v}, corpus, "passage")
        if bad:
            negs = {q: [p for p in v if p not in bad] for q, v in negs.items()}
    else:
        logger.warning("no --neg_file: negatives are random corpus passages")
    dataset = TrainDataset(
        queries,
        corpus,
        pos,
        negs,
        group_size=data_args.train_group_size,
        sample_neg_from_topk=data_args.sample_neg_from_topk,
        seed=training_args.seed,
        sample_neg_skip_topk=data_args.sample_neg_skip_topk,
        random_negatives=data_args.random_negatives,
    )
    if len(dataset) == 0:
        raise InputError(qrels_path, "no training query has a positive in the corpus")
    logger.info("training on %d queries, group size %d", len(dataset), dataset.group_size)
    training_args.remove_unused_columns = False
    evaluator = build_evaluator(data_args, training_args, corpus, predict_template)
    model = load_model(model_args)
    model_card.prepare_for_hub(model, tokenizer, data_args.max_len)
    trainer = CrossEncoderTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        eval_dataset=None if evaluator is None else ["dev"],  # evaluate() reranks instead
        data_collator=GroupCollator(template),
        processing_class=tokenizer,
        group_size=data_args.train_group_size,
        temperature=training_args.temperature,
        evaluator=evaluator,
    )
    last = None
    if os.path.isdir(training_args.output_dir) and not getattr(
        training_args, "overwrite_output_dir", False
    ):
        last = last_complete_checkpoint(training_args.output_dir, training_args.world_size)
        if last:
            logger.info("resuming from %s", last)
    result = trainer.train(resume_from_checkpoint=last)
    groups_per_s = result.metrics.get("train_samples_per_second")
    if groups_per_s:
        logger.info(
            "train throughput: %.1f pairs/s (%.2f groups/s of %d)",
            groups_per_s * data_args.train_group_size,
            groups_per_s,
            data_args.train_group_size,
        )
    log_peak_gpu_memory("train")
    if evaluator is not None and trainer.state.best_model_checkpoint:
        logger.info(
            "best dev %s %.4f at %s%s",
            training_args.metric_for_best_model,
            trainer.state.best_metric,
            trainer.state.best_model_checkpoint,
            " (the final model)" if training_args.load_best_model_at_end else "",
        )
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        trainer.save_state()
        # A hub-ready folder: the card, what it is written from, the tokenization record.
        recorded = tokenizer_identity.read(corpus.path)
        identity = tokenizer_identity.build(
            tokenizer,
            model_args.tokenizer_name or model_args.model_name_or_path,
            recorded.get("max_seq_length") if recorded else None,
            recorded.get("use_title") if recorded else None,
        )
        summary = model_card.training_summary(
            model_args,
            data_args,
            training_args,
            trainer.state,
            n_train_queries=len(dataset),
            n_passages=len(corpus),
            corpus_identity=recorded,
        )
        model_card.finish_model_folder(
            training_args.output_dir,
            summary,
            identity,
            model_id=training_args.final_model_dir or training_args.output_dir,
        )
        if training_args.final_model_dir:
            export_model(training_args.output_dir, training_args.final_model_dir)
    return trainer.model


def export_model(output_dir: str, final_dir: str) -> None:
    """Copy the final model (weights, config, tokenizer; no checkpoints) to ``final_dir``,
    atomically: a workflow can keep checkpoints for resuming outside its declared output."""
    import shutil

    src, dst = Path(output_dir), Path(final_dir)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.name != "training_args.bin":
            shutil.copy2(f, tmp / f.name)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    logger.info("final model in %s", dst)


def predict(model, data_args, training_args, template) -> None:
    import numpy as np

    from .collection import TokenizedCollection
    from .io import write_scores

    why = "with --do_predict"
    corpus = TokenizedCollection.load(
        _require(data_args.corpus_file, "--corpus_file", why), data_args.corpus_id_file
    )
    queries = TokenizedCollection.load(
        _require(data_args.test_query_file, "--test_query_file", why),
        data_args.test_query_id_file,
    )
    test_file = _require(data_args.test_file, "--test_file", why)
    pairs = [(r.qid, r.pid) for r in iter_ranking(test_file, depth=data_args.prediction_topk)]
    bad_q = check_ids(test_file, {q for q, _ in pairs}, queries, "query")
    bad_p = check_ids(test_file, {p for _, p in pairs}, corpus, "passage")
    pairs = [(q, p) for q, p in pairs if q not in bad_q and p not in bad_p]
    logger.info("scoring %d pairs from %s", len(pairs), test_file)
    if training_args.backend == "openvino":
        scores, elapsed = _predict_openvino(model, training_args, template, queries, corpus, pairs)
    else:
        scores, elapsed = _predict_torch(model, training_args, template, queries, corpus, pairs)
    log_peak_gpu_memory("predict")
    if scores is None:  # not rank 0
        return
    logger.info(
        "scored %d pairs in %.2f s (%.1f pairs/s, all ranks)",
        len(pairs),
        elapsed,
        len(pairs) / max(elapsed, 1e-9),
    )
    if not np.isfinite(scores).all():
        raise RuntimeError("the model produced non-finite scores; nothing written")
    n = write_scores(
        data_args.prediction_save_path,
        ((q, p, float(s)) for (q, p), s in zip(pairs, scores, strict=True)),
    )
    logger.info("wrote %d scores to %s", n, data_args.prediction_save_path)


def _batch_budget(training_args) -> dict:
    """Length-sorted batches of at most this many tokens and pairs, for either backend."""
    return {
        "max_tokens": training_args.prediction_batch_tokens,
        "max_pairs": max(training_args.per_device_eval_batch_size, 1),
    }


def _predict_openvino(model, training_args, template, queries, corpus, pairs):
    """``--backend openvino``: one process on the CPU, at the precision ``--precision``
    names; ``auto`` is this package's choice for the CPU (bf16 where AMX is confirmed by
    timing, else fp32), not OpenVINO's own, which takes bf16 from the CPU flags alone."""
    import torch.distributed as dist

    from . import openvino_backend

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise InputError(None, "--backend openvino runs in one process: drop torchrun (nproc 1)")
    if training_args.device.type != "cpu":
        logger.warning("--backend openvino runs on the CPU, not on %s", training_args.device)
    if training_args.device.type == "cpu":  # --precision as arguments resolved it here
        precision = "bf16" if training_args.bf16 else "fp32"
    else:  # the flags describe the GPU: take this CPU's own choice
        from . import hardware

        precision = hardware.resolve("auto", "cpu")
    scorer = openvino_backend.compile_model(model.cpu(), template, precision=precision)
    logger.info("predict precision: OpenVINO %s, fp32 score head", scorer.precision)
    start = time.perf_counter()
    scores = openvino_backend.score_pairs(
        scorer,
        template,
        queries,
        corpus,
        pairs,
        **_batch_budget(training_args),
        progress=not training_args.disable_tqdm,
    )
    return scores, time.perf_counter() - start


def _predict_torch(model, training_args, template, queries, corpus, pairs):
    import torch

    from .predict import cast_for_inference, score_pairs

    model.to(training_args.device)
    autocast_dtype = None
    if training_args.device.type == "cuda" and (training_args.bf16 or training_args.fp16):
        autocast_dtype = torch.bfloat16 if training_args.bf16 else torch.float16
    elif training_args.device.type == "cpu" and training_args.bf16:
        # --precision auto chose bf16 (an AMX CPU) or it was asked for: bf16 weights, the
        # score head in float32 (3.7x fp32 here, against 3.1x for autocast).
        cast_for_inference(model, torch.bfloat16)
    logger.info(
        "predict precision: %s",
        {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}.get(autocast_dtype)
        or ("bf16 weights, fp32 score head" if training_args.bf16 else "fp32"),
    )
    start = time.perf_counter()
    scores = score_pairs(
        model,
        template,
        queries,
        corpus,
        pairs,
        **_batch_budget(training_args),
        device=training_args.device,
        autocast_dtype=autocast_dtype,
    )
    return scores, time.perf_counter() - start


@cli
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: one copy of the logs is enough
        _quiet_non_main_rank()
    try:
        model_args, data_args, training_args = parse_args(argv)
    except ValueError as e:
        raise InputError(None, str(e).splitlines()[0]) from None
    if not (training_args.do_train or training_args.do_predict):
        raise InputError(None, "nothing to do: pass --do_train and/or --do_predict")

    import torch
    from transformers import set_seed

    from .data import PairTemplate
    from .preprocess import load_tokenizer
    from .trainer import NonFiniteLossError

    if training_args.per_device_eval_batch_size == 8:  # HF's default is far too small here
        training_args.per_device_eval_batch_size = 256
    set_seed(training_args.seed)
    tokenizer = load_tokenizer(
        model_args.tokenizer_name or model_args.model_name_or_path, model_args.trust_remote_code
    )
    template = PairTemplate(tokenizer, data_args.max_len)
    predict_template = PairTemplate(tokenizer, data_args.prediction_max_len)
    check_tokenization(model_args, data_args, training_args, tokenizer)
    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, torch.get_num_threads()))
    model = None
    try:
        if training_args.do_train:
            model = train(
                model_args, data_args, training_args, tokenizer, template, predict_template
            )
        if training_args.do_predict:
            if model is None:
                model = load_model(model_args)
            predict(model, data_args, training_args, predict_template)
    except NonFiniteLossError as e:
        # No traceback: the message names the step and what to change. Under torchrun the
        # agent then stops the other ranks.
        logger.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 3
    _finish_distributed()
    return 0


def _quiet_non_main_rank() -> None:
    import transformers

    logging.getLogger().setLevel(logging.WARNING)
    for name in ("cross_encoder", "__main__"):
        logging.getLogger(name).setLevel(logging.WARNING)
    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()


def _finish_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
