# Helpers of train.smk: extra flags, checkpoint selection on dev, tracking.


def extra_args(value) -> str:
    """Extra command-line flags from the config, each quoted."""
    return " ".join(q(a) for a in shlex.split(value or ""))


def selection_inputs():
    """Dev files the train rule reads to select its checkpoint (none without selection)."""
    split = SELECT["split"]
    if not split:
        return {}
    return {
        "eval_queries": OUT / "tokenized" / f"{split}_query",
        "eval_ranking": ranking_file(split),
        "eval_qrels": qrels_file(split),
    }


def selection_flags(wildcards, input):
    """cross_encoder.run flags that rerank dev every eval_steps and keep the best checkpoint."""
    if not SELECT["split"]:
        return f"--save_steps {TRAIN['save_steps']}"
    metric = SELECT["metric"] or METRIC
    metrics = list(dict.fromkeys([metric, "nDCG@10", "MRR@10"]))
    flags = [
        f"--eval_query_file {q(input.eval_queries)}",
        f"--eval_file {q(input.eval_ranking)}",
        f"--eval_qrels {q(input.eval_qrels)}",
        f"--eval_topk {SELECT['topk'] or RERANK['prediction_topk']}",
        f"--eval_max_queries {SELECT['max_queries']}",
        f"--eval_metrics {q(','.join(metrics))}",
        f"--eval_strategy steps --eval_steps {SELECT['eval_steps']}",
        f"--save_steps {SELECT['eval_steps']} --load_best_model_at_end",
        f"--metric_for_best_model {q(metric)}",
    ]
    if SELECT["patience"]:
        flags.append(f"--early_stopping_patience {SELECT['patience']}")
    return " ".join(flags)


def tracking_env():
    """TensorBoard's event files go to <run>/tensorboard (transformers reads the variable)."""
    if {"tensorboard", "all"} & set(report_to()):
        return f"TENSORBOARD_LOGGING_DIR={q(OUT / 'tensorboard')}"
    return ""
