"""The cross-encoder model's home: the model (:mod:`.model`: names, load, tokenizer, the
tokenization check, save and export), the pair format (:mod:`.pairs`), the tokenizer guard
(:mod:`.tokenizer_identity`) and the model card (:mod:`.card`)."""

from cross_encoder.modeling import card, tokenizer_identity
from cross_encoder.modeling.model import (
    NO_SAFETENSORS,
    PACKAGED,
    check_tokenization,
    export_model,
    load_model,
    load_tokenizer,
    resolve_model,
    save_trained_model,
)

__all__ = [
    "NO_SAFETENSORS",
    "PACKAGED",
    "card",
    "check_tokenization",
    "export_model",
    "load_model",
    "load_tokenizer",
    "resolve_model",
    "save_trained_model",
    "tokenizer_identity",
]
