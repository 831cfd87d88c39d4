# Helpers of rerank.smk: shards and the fusion of the reranker with the first stage.


def shard_flag(wildcards) -> str:
    """--prediction_shard of a shard job (its scatter item i-of-k), '' for a one-job rule."""
    item = wildcards.get("scatteritem")
    return f"--prediction_shard {item}" if item else ""


def fusion_sources(split):
    """Scored rankings interpolated with the cross-encoder besides the first stage's own
    score: BM25's and the dense one under a hybrid first stage."""
    if user_ranking(split) or FIRST["method"] != "hybrid":
        return {}
    return {m: str(OUT / "first_stage" / f"{split}.{m}.tsv") for m in ("bm25", "dense")}


def source_flags(paths):
    return " ".join(q(f"--source={name}={path}") for name, path in paths.items())


def split_fusion_sources(wildcards):
    return list(fusion_sources(wildcards.split).values())


def split_source_flags(wildcards):
    return source_flags(fusion_sources(wildcards.split))


def fused_output_flag(wildcards, output):
    """rerank_fusion's --output_fused, when a fused run is configured."""
    return f"--output_fused {q(output.fused)}" if FUSE["method"] != "none" else ""


def fusion_how(wildcards, input):
    """How rerank_fusion fuses: the tuned file, or the configured fixed setting."""
    if FUSE["method"] == "auto":
        return f"--fusion_file {q(input.fusion)}"
    return flags(FUSE, "method", "weight", "k")
