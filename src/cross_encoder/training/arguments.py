"""Command-line arguments of ``cross_encoder.run``: RetroMAE's names, plus every HF
``TrainingArguments`` flag. A single ``.json`` argument replaces the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from cross_encoder import hardware


@dataclass
class ModelArguments:
    """Which model and tokenizer ``run`` loads (``--model_name_or_path`` and friends)."""

    model_name_or_path: str = field(
        metadata={"help": "HF model name or local dir (AutoModelForSequenceClassification)"}
    )
    config_name: str | None = field(default=None, metadata={"help": "config, if not the model's"})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "tokenizer, if not the model's"}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "HF cache directory"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow model code from the hub (off by default)"}
    )
    allow_tokenizer_mismatch: bool = field(
        default=False,
        metadata={
            "help": "use tokenized folders whose recorded tokenizer (tokenizer_identity.json) "
            "is not the model's: a warning instead of an error (experts only)"
        },
    )


@dataclass
class DataArguments:
    """Tokenized inputs, grouping and prediction files of ``run`` (RetroMAE's data flags).

    ``__post_init__`` checks ranges (one ``ValueError`` line each, exit 2 through
    :func:`~cross_encoder.io.cli`) and fills the defaults that depend on other flags
    (``prediction_max_len``, ``eval_topk``, each folder's ``mapping_id.txt``).
    """

    corpus_file: str | None = field(
        default=None, metadata={"help": "tokenized corpus folder (preprocess output)"}
    )
    train_query_file: str | None = field(default=None, metadata={"help": "tokenized train queries"})
    train_qrels: str | None = field(default=None, metadata={"help": "train qrels (qid\\tpid)"})
    neg_file: str | None = field(
        default=None, metadata={"help": "hard negatives: qid\\tpid,pid,... in rank order"}
    )
    test_query_file: str | None = field(default=None, metadata={"help": "tokenized test queries"})
    test_file: str | None = field(
        default=None, metadata={"help": "ranking to rerank: qid\\tpid[\\trank\\tscore]"}
    )
    prediction_save_path: str = field(
        default="rerank_score.txt", metadata={"help": "where --do_predict writes qid\\tpid\\tscore"}
    )
    corpus_id_file: str | None = field(default=None, metadata={"help": "<corpus>/mapping_id.txt"})
    train_query_id_file: str | None = field(default=None, metadata={"help": "mapping_id.txt"})
    test_query_id_file: str | None = field(default=None, metadata={"help": "mapping_id.txt"})
    train_group_size: int = field(default=8, metadata={"help": "1 positive + G-1 negatives"})
    sample_neg_from_topk: int = field(
        default=200, metadata={"help": "draw negatives from this many top neg_file entries"}
    )
    sample_neg_skip_topk: int = field(
        default=0,
        metadata={
            "help": "skip this many top neg_file entries (likely unlabelled positives): "
            "negatives come from ranks skip+1..sample_neg_from_topk"
        },
    )
    random_negatives: int = field(
        default=0,
        metadata={"help": "of the G-1 negatives, draw this many uniformly from the corpus"},
    )
    prediction_topk: int = field(
        default=200, metadata={"help": "rerank this many top passages per query"}
    )
    max_len: int = field(default=128, metadata={"help": "max tokens of a query-passage pair"})
    prediction_max_len: int | None = field(
        default=None,
        metadata={"help": "max tokens of a pair when scoring (default: --max_len); may exceed it"},
    )
    eval_query_file: str | None = field(
        default=None, metadata={"help": "model selection: tokenized dev queries"}
    )
    eval_file: str | None = field(
        default=None,
        metadata={"help": "model selection: the dev first-stage ranking to rerank while training"},
    )
    eval_qrels: str | None = field(
        default=None, metadata={"help": "model selection: dev qrels (qid pid [rel])"}
    )
    eval_query_id_file: str | None = field(default=None, metadata={"help": "mapping_id.txt"})
    eval_topk: int | None = field(
        default=None,
        metadata={"help": "model selection: rerank this many (default: prediction_topk)"},
    )
    eval_max_queries: int = field(
        default=0,
        metadata={
            "help": "model selection: a fixed seeded sample of this many dev queries (0: all)"
        },
    )
    eval_metrics: str = field(
        default="MRR@10,nDCG@10",
        metadata={"help": "metrics logged at each evaluation (--metric_for_best_model picks one)"},
    )

    def __post_init__(self) -> None:
        if self.train_group_size < 2:
            raise ValueError("--train_group_size must be >= 2")
        if self.max_len < 8:
            raise ValueError("--max_len must be >= 8")
        if self.prediction_max_len is None:
            self.prediction_max_len = self.max_len
        if self.prediction_max_len < 8:
            raise ValueError("--prediction_max_len must be >= 8")
        if not 0 <= self.sample_neg_skip_topk < self.sample_neg_from_topk:
            raise ValueError("--sample_neg_skip_topk must be >= 0 and < --sample_neg_from_topk")
        if not 0 <= self.random_negatives < self.train_group_size:
            raise ValueError("--random_negatives must be between 0 and --train_group_size - 1")
        if self.eval_topk is None:
            self.eval_topk = self.prediction_topk
        given = [f for f in ("eval_query_file", "eval_file", "eval_qrels") if getattr(self, f)]
        if given and len(given) < 3:
            raise ValueError(
                "--eval_query_file, --eval_file and --eval_qrels go together "
                f"(given: {', '.join('--' + g for g in given)})"
            )
        for name in ("corpus", "train_query", "test_query", "eval_query"):
            folder = getattr(self, f"{name}_file")
            if folder and getattr(self, f"{name}_id_file") is None:
                setattr(self, f"{name}_id_file", os.path.join(folder, "mapping_id.txt"))


def disable_deepspeed_shm_comm() -> None:
    """Keep DeepSpeed from compiling its shared-memory CPU collective op (minutes on a small
    machine, and a C++ toolchain needed) when it initialises on CPU: communication then falls
    back to gloo. No environment variable turns that op off, hence the flag here. Must run
    before DeepSpeed initialises the process group (``TrainingArguments`` does that)."""
    try:
        import deepspeed.ops
    except ImportError:  # no DeepSpeed: HF will say so when it needs it
        return
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def check_deepspeed_optimizer(args) -> None:
    """Refuse a DeepSpeed JSON with an ``optimizer`` block: transformers then gives DeepSpeed
    one parameter group and never calls ``CrossEncoderTrainer.create_optimizer``, so the
    head's learning rate and layer-wise decay would be dropped without a word and weight
    decay would hit biases and LayerNorm too."""
    ds = getattr(args, "hf_deepspeed_config", None)
    if ds is None or "optimizer" not in ds.config:
        return
    raise ValueError(
        f'{args.deepspeed}: remove the "optimizer" block; with it DeepSpeed builds one '
        "parameter group and ignores --head_learning_rate, --layerwise_lr_decay and the "
        "no-decay group (biases, LayerNorm); without it the trainer's AdamW is used "
        "(config/deepspeed/zero2.json)"
    )


# Not "mixed_precision": TrainingArguments.__post_init__ overwrites an attribute of that name.
PRECISIONS = hardware.PRECISIONS
BACKENDS = ("torch", "openvino")


@dataclass
class CrossEncoderTrainingArguments(TrainingArguments):
    """HF ``TrainingArguments`` plus the cross-encoder's own: loss temperature, optimizer
    groups, model selection, non-finite and preemption handling, prediction batching and
    sharding, precision, backend and int8.

    ``__post_init__`` resolves ``--precision`` (``auto``: what is fast on this machine,
    :mod:`cross_encoder.hardware`) before ``TrainingArguments`` validates fp16/bf16 against
    the device and starts DeepSpeed, which is why it runs here and not in the driver.
    """

    temperature: float | None = field(
        default=None, metadata={"help": "divide scores by this before the softmax"}
    )
    final_model_dir: str | None = field(
        default=None,
        metadata={"help": "also copy the final model here (output_dir keeps the checkpoints)"},
    )
    head_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "learning rate of the score head (parameters outside the base model, e.g. "
            "BERT's classifier), which starts from random weights; default: --learning_rate"
        },
    )
    layerwise_lr_decay: float | None = field(
        default=None,
        metadata={
            "help": "layer-wise learning-rate decay: the top encoder layer gets the learning "
            "rate, each layer below it this factor more, the embeddings the lowest (e.g. 0.9)"
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "stop after this many evaluations without a better dev metric"},
    )
    prediction_batch_tokens: int = field(
        default=16384,
        metadata={
            "help": "predict: max padded tokens per batch (length-sorted batches); this budget "
            "sizes the batches"
        },
    )
    prediction_batch_pairs: int = field(
        default=0,
        metadata={
            "help": "predict: also cap a batch at this many pairs (0: no cap, the token budget "
            "alone decides); an explicit --per_device_eval_batch_size sets it when this is 0"
        },
    )
    prediction_chunk_pairs: int = field(
        default=1_000_000,
        metadata={
            "help": "predict: pairs per chunk: batches are length-sorted within a chunk and "
            "its scores written before the next one starts, so memory stays flat whatever the "
            "ranking's size (a ranking of at most this many pairs is one chunk)"
        },
    )
    prediction_shard: str | None = field(
        default=None,
        metadata={
            "help": "predict: i/k: score only shard i of k (a contiguous share of the chunks); "
            "the k files concatenated in order equal the one-job file byte for byte"
        },
    )
    backend: str = field(
        default="torch",
        metadata={
            "help": "predict: torch (the default), or openvino: the model converted and compiled "
            "for the CPU by OpenVINO (the openvino extra; one process; OpenVINO picks its own "
            "precision under --precision auto: bf16 on AMX), the score head in float32",
            "choices": list(BACKENDS),
        },
    )
    max_nonfinite_steps: int = field(
        default=10,
        metadata={
            "help": "fp16 (a loss scaler skips the step of a non-finite loss): stop after this "
            "many optimizer steps in a row with a NaN/inf loss. Without a loss scaler (fp32, "
            "bf16) the first one stops the run"
        },
    )
    require_gpu: bool = field(
        default=False,
        metadata={
            "help": "stop at once (exit 2) unless every process on this node has a CUDA GPU "
            "of its own, instead of falling back to the CPU (the workflow passes it when "
            "train.use_gpu is true)"
        },
    )
    precision: str | None = field(
        default=None,
        metadata={
            "help": "auto: on a CPU bf16 where it is fast (AMX, confirmed by a timing), else "
            "fp32; on a GPU bf16 where supported, else fp16. bf16/fp16/fp32: as named (fp16 "
            "on a CPU: auto's choice). Unset: --fp16/--bf16 decide; without them auto on a "
            "CPU, fp32 on a GPU (HF behaviour)",
            "choices": list(PRECISIONS),
        },
    )

    quantize: str = field(
        default="none",
        metadata={
            "help": "predict on a CPU with a static int8 model (OpenVINO + NNCF, the openvino "
            "extra), accepted only if it ranks the dev set (--eval_*) as well as full precision "
            "(cross_encoder.reranking.quantize): int8 = where accepted, auto = where accepted "
            "and faster here, none = never",
            "choices": ["none", "int8", "auto"],
        },
    )
    quantization_file: str | None = field(
        default=None,
        metadata={
            "help": "the int8 decision (quantization.json; the model in int8/ beside it), reused "
            "when it matches the model and settings; default <output_dir>/quantization.json"
        },
    )
    quantize_max_metric_drop: float = field(
        default=0.005, metadata={"help": "int8 guard: max drop of the dev selection metric"}
    )
    quantize_min_spearman: float = field(
        default=0.99,
        metadata={"help": "int8 guard: min mean per-query Spearman against full precision"},
    )
    quantize_calibration_pairs: int = field(
        default=300, metadata={"help": "int8: calibration pairs (train pairs, else dev), seeded"}
    )
    quantize_max_queries: int = field(
        default=100, metadata={"help": "int8 guard: a seeded sample of dev queries (0: all)"}
    )

    def __post_init__(self) -> None:
        import logging

        import torch

        log = logging.getLogger(__name__)
        if self.head_learning_rate is not None and self.head_learning_rate <= 0:
            raise ValueError("--head_learning_rate must be > 0")
        if self.layerwise_lr_decay is not None and not 0 < self.layerwise_lr_decay <= 1:
            raise ValueError("--layerwise_lr_decay must be in (0, 1]")
        if self.max_nonfinite_steps < 1:
            raise ValueError("--max_nonfinite_steps must be >= 1")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError("--early_stopping_patience must be >= 1")
        if self.prediction_batch_tokens < 1:
            raise ValueError("--prediction_batch_tokens must be >= 1")
        if self.prediction_batch_pairs < 0:
            raise ValueError("--prediction_batch_pairs must be >= 0 (0: no cap)")
        if self.prediction_chunk_pairs < 1:
            raise ValueError("--prediction_chunk_pairs must be >= 1")
        if self.prediction_shard is not None:
            from cross_encoder.io.cli import parse_shard

            parse_shard(self.prediction_shard)
        if self.quantize not in ("none", "int8", "auto"):
            raise ValueError("--quantize must be one of none, int8, auto")
        if self.quantize_calibration_pairs < 1:
            raise ValueError("--quantize_calibration_pairs must be >= 1")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}")
        if self.backend == "openvino":
            from cross_encoder.reranking.openvino import INSTALL_HINT, available

            if not available():
                raise ValueError(f"--backend openvino needs OpenVINO: {INSTALL_HINT}")
        if self.require_gpu and (problem := hardware.gpu_problem()):
            raise ValueError(f"--require_gpu: {problem}")
        cuda = torch.cuda.is_available()
        mp = self.precision
        if mp is not None:
            if mp not in PRECISIONS:
                raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}")
            if (self.fp16 and mp != "fp16") or (self.bf16 and mp != "bf16"):
                raise ValueError(f"--precision {mp} contradicts --fp16/--bf16: pass one")
        elif self.fp16 or self.bf16:
            mp = "fp16" if self.fp16 else "bf16"
        elif not cuda:
            mp = "auto"
        if cuda:
            if mp is not None:
                mp = hardware.resolve(mp, "cuda")
                self.fp16, self.bf16 = mp == "fp16", mp == "bf16"
            elif self.fp16 and torch.cuda.is_bf16_supported(including_emulation=False):
                log.info(
                    "--fp16 on a GPU with bf16 support: keeping fp16 as asked (bf16 is less "
                    "prone to overflow; --bf16 or --precision auto would use it)"
                )
        else:
            # bf16 on a CPU: HF Trainer (accelerate's native AMP) runs the forward under
            # torch.autocast("cpu", bf16) with float32 master weights; predict casts weights.
            mp = hardware.resolve(mp, "cpu")
            self.fp16, self.bf16 = False, mp == "bf16"
            self.use_cpu = True
            if self.deepspeed:
                disable_deepspeed_shm_comm()
        # Several integrations as one comma-separated value (transformers 5 takes one string
        # from the command line and would look up "tensorboard,wandb" as a single name).
        if isinstance(self.report_to, str) and "," in self.report_to:
            self.report_to = [t.strip() for t in self.report_to.split(",") if t.strip()]
        # HF's default for a model without gradient checkpointing is True: DDP then walks the
        # autograd graph after every backward looking for parameters without a gradient. A
        # cross-encoder uses all of them (--ddp_find_unused_parameters true if yours doesn't).
        if self.ddp_find_unused_parameters is None:
            self.ddp_find_unused_parameters = False
        super().__post_init__()
        check_deepspeed_optimizer(self)
