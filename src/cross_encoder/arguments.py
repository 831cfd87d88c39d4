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

    def __post_init__(self) -> None:
        import warnings

        import torch

        if not torch.cuda.is_available():
            if self.fp16 or self.bf16:
                warnings.warn(
                    "--fp16/--bf16 asked for but no CUDA GPU is present: training in fp32 "
                    "(bf16 on CPUs without bf16 units runs ~6x slower than fp32)",
                    stacklevel=2,
                )
                self.fp16 = self.bf16 = False
            self.use_cpu = True
        super().__post_init__()
