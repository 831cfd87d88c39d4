"""Command-line arguments of ``cross_encoder.run``: RetroMAE's names, plus every HF
``TrainingArguments`` flag. A single ``.json`` argument replaces the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class ModelArguments:
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


@dataclass
class DataArguments:
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
    prediction_topk: int = field(
        default=200, metadata={"help": "rerank this many top passages per query"}
    )
    max_len: int = field(default=128, metadata={"help": "max tokens of a query-passage pair"})

    def __post_init__(self) -> None:
        if self.train_group_size < 2:
            raise ValueError("--train_group_size must be >= 2")
        if self.max_len < 8:
            raise ValueError("--max_len must be >= 8")
        for name in ("corpus", "train_query", "test_query"):
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


# Not "mixed_precision": TrainingArguments.__post_init__ overwrites an attribute of that name.
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass
class CrossEncoderTrainingArguments(TrainingArguments):
    temperature: float | None = field(
        default=None, metadata={"help": "divide scores by this before the softmax"}
    )
    final_model_dir: str | None = field(
        default=None,
        metadata={"help": "also copy the final model here (output_dir keeps the checkpoints)"},
    )
    prediction_batch_tokens: int = field(
        default=16384,
        metadata={"help": "predict: max padded tokens per batch (length-sorted batches)"},
    )
    precision: str | None = field(
        default=None,
        metadata={
            "help": "auto: bf16 on GPUs that support it, else fp16 on GPU, fp32 without one; "
            "bf16/fp16/fp32: as named. Unset: --fp16/--bf16 decide (HF behaviour)",
            "choices": list(PRECISIONS),
        },
    )

    def __post_init__(self) -> None:
        import logging
        import warnings

        import torch

        log = logging.getLogger(__name__)
        cuda = torch.cuda.is_available()
        if self.precision is not None:
            mp = self.precision
            if mp not in PRECISIONS:
                raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}")
            if (self.fp16 and mp != "fp16") or (self.bf16 and mp != "bf16"):
                raise ValueError(f"--precision {mp} contradicts --fp16/--bf16: pass one")
            if mp == "auto":
                if cuda:
                    bf16_ok = torch.cuda.is_bf16_supported(including_emulation=False)
                    mp = "bf16" if bf16_ok else "fp16"
                else:
                    mp = "fp32"
                log.info("--precision auto: %s", mp if cuda else "fp32 (no CUDA GPU)")
            self.fp16, self.bf16 = mp == "fp16", mp == "bf16"
        elif cuda and self.fp16 and torch.cuda.is_bf16_supported(including_emulation=False):
            log.info(
                "--fp16 on a GPU with bf16 support: keeping fp16 as asked (bf16 is less prone to "
                "overflow; --bf16 or --precision auto would use it)"
            )
        if not cuda:
            if self.fp16 or self.bf16:
                warnings.warn(
                    "--fp16/--bf16 asked for but no CUDA GPU is present: training in fp32 "
                    "(bf16 on CPUs without bf16 units runs ~6x slower than fp32)",
                    stacklevel=2,
                )
                self.fp16 = self.bf16 = False
            self.use_cpu = True
            if self.deepspeed:
                disable_deepspeed_shm_comm()
        super().__post_init__()
