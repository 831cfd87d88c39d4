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

from cross_encoder.io import InputError, cli, require_path, setup_logging
from cross_encoder.training.arguments import (
    CrossEncoderTrainingArguments,
    DataArguments,
    ModelArguments,
)

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None):
    """The three argument dataclasses from ``argv`` (or one JSON file, as HF scripts take).

    Args:
        argv: command-line flags; None: ``sys.argv[1:]``.

    Returns:
        ``(ModelArguments, DataArguments, CrossEncoderTrainingArguments)``.
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DataArguments, CrossEncoderTrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def train(model_args, data_args, training_args, tokenizer, template, predict_template):
    """Train on grouped data (resuming from the last checkpoint), select on dev when asked,
    and save the model folder.

    Returns:
        The trained model (the best dev checkpoint with ``--load_best_model_at_end``).
    """
    from cross_encoder import modeling
    from cross_encoder.hardware import log_peak_gpu_memory
    from cross_encoder.io.collection import TokenizedCollection
    from cross_encoder.training.dataset import GroupCollator, load_training_data
    from cross_encoder.training.selection import build_evaluator
    from cross_encoder.training.trainer import CrossEncoderTrainer, resume_checkpoint

    corpus = TokenizedCollection.load(
        require_path(data_args.corpus_file, "--corpus_file", "with --do_train"),
        data_args.corpus_id_file,
    )
    dataset = load_training_data(data_args, training_args.seed, corpus)
    logger.info("training on %d queries, group size %d", len(dataset), dataset.group_size)
    training_args.remove_unused_columns = False
    evaluator = build_evaluator(data_args, training_args, corpus, predict_template)
    model = modeling.load_model(model_args)
    modeling.card.prepare_for_hub(model, tokenizer, data_args.max_len)
    trainer = CrossEncoderTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        eval_dataset=None if evaluator is None else ["dev"],  # evaluate() reranks instead
        data_collator=GroupCollator(template),
        processing_class=tokenizer,
        group_size=data_args.train_group_size,
        evaluator=evaluator,
    )
    result = trainer.train(resume_from_checkpoint=resume_checkpoint(training_args))
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
    modeling.save_trained_model(
        trainer, model_args, data_args, training_args, n_train_queries=len(dataset), corpus=corpus
    )
    return trainer.model


@cli
def main(argv: list[str] | None = None) -> int:
    """``--do_train`` and/or ``--do_predict``; 0 done, 2 bad input, 3 non-finite loss,
    ``EXIT_PREEMPTED`` (75) stopped by a signal after a checkpoint (rerun to resume)."""
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

    from cross_encoder import modeling
    from cross_encoder.modeling.pairs import PairTemplate
    from cross_encoder.reranking.rerank import rerank_file
    from cross_encoder.training.preemption import EXIT_PREEMPTED, Preempted
    from cross_encoder.training.trainer import NonFiniteLossError

    _pair_cap_from_eval_batch_size(argv, training_args)
    set_seed(training_args.seed)
    tokenizer = modeling.load_tokenizer(
        model_args.tokenizer_name or model_args.model_name_or_path, model_args.trust_remote_code
    )
    template = PairTemplate(tokenizer, data_args.max_len)
    predict_template = PairTemplate(tokenizer, data_args.prediction_max_len)
    modeling.check_tokenization(model_args, data_args, training_args, tokenizer)
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
                model = modeling.load_model(model_args)
            rerank_file(model, data_args, training_args, predict_template, model_args)
    except NonFiniteLossError as e:
        # No traceback: the message names the step and what to change. Under torchrun the
        # agent then stops the other ranks.
        logger.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 3
    except Preempted as e:  # a time limit or preemption: the next run resumes
        logger.warning("%s", e)
        _finish_distributed()
        return EXIT_PREEMPTED
    _finish_distributed()
    return 0


def _pair_cap_from_eval_batch_size(argv: list[str] | None, training_args) -> None:
    """Predict batches follow --prediction_batch_tokens; HF's --per_device_eval_batch_size
    (default 8, far too small here) is not used unless given explicitly, as the seed's
    command lines do: then it caps a batch's pairs (--prediction_batch_pairs, unless set)."""
    argv = sys.argv[1:] if argv is None else argv
    flag = "--per_device_eval_batch_size"
    given = any(a == flag or a.startswith(flag + "=") for a in argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        import json

        with open(argv[0], encoding="utf-8") as f:
            given = flag[2:] in json.load(f)
    if given and training_args.prediction_batch_pairs == 0:
        training_args.prediction_batch_pairs = training_args.per_device_eval_batch_size
        logger.info(
            "predict: at most %d pairs a batch (%s) within %d tokens (--prediction_batch_tokens)",
            training_args.prediction_batch_pairs,
            flag,
            training_args.prediction_batch_tokens,
        )


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
