# Helpers of quantize.smk, used also by rerank.smk and teacher.smk (common_distill.smk).


def quantize_on(mode=None):
    return (mode or RERANK["quantize"]) != "none"


def quantize_flags():
    """The settings the decision is keyed on, passed alike to quantize, rerank and teacher."""
    guard = RERANK["quantization"]
    return flags(
        RERANK,
        "quantize",
        quantize_calibration_pairs=guard["calibration_pairs"],
        quantize_max_metric_drop=guard["max_metric_drop"],
        quantize_min_spearman=guard["min_spearman"],
        quantize_max_queries=guard["max_queries"],
        quantization_file=OUT / "rerank" / "quantization.json",
        seed=TRAIN["seed"],
    )


def with_quantize(args, on=True):
    """Predict flags plus quantize_flags() when quantization is on (and `on`)."""
    return f"{args} {quantize_flags()}" if on and quantize_on() else args


def quantization_input(on=True):
    """rerank's (or teacher_scores') input: the decision, when quantization is on."""
    return str(OUT / "rerank" / "quantization.json") if on and quantize_on() else []


def quantize_metric():
    return SELECT["metric"] or METRIC


def quantization_flag(wildcards, input):
    """The model card's --quantization (the decision's figures), when quantization is on."""
    return f"--quantization {q(input.quantization)}" if quantize_on() else ""
