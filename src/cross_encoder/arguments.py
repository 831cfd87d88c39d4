"""Command-line arguments of ``cross_encoder.run``: RetroMAE's names, plus every HF
``TrainingArguments`` flag. A single ``.json`` argument replaces the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from . import hardware


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
PRECISIONS = hardware.PRECISIONS


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
            "help": "auto: on a CPU bf16 where it is fast (AMX, confirmed by a timing), else "
            "fp32; on a GPU bf16 where supported, else fp16. bf16/fp16/fp32: as named (fp16 "
            "on a CPU: auto's choice). Unset: --fp16/--bf16 decide; without them auto on a "
            "CPU, fp32 on a GPU (HF behaviour)",
            "choices": list(PRECISIONS),
        },
    )

    def __post_init__(self) -> None:
        import logging

        import torch

        log = logging.getLogger(__name__)
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
        super().__post_init__()
