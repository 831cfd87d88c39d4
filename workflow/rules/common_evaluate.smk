# Helpers of evaluate.smk: the fused run and the rows tuned on the evaluated queries.


def fused_run_flags(wildcards, input):
    """How evaluate reports the fused run: with the fusion tuned on dev (auto), as a run
    named by its fixed setting (rrf, interpolate), or not at all (none)."""
    if FUSE["method"] == "none":
        return ""
    if FUSE["method"] == "auto":
        return f"--fused_file {q(input.fused)} --fusion_file {q(input.fusion)}"
    return q(f"--run=fused ({FUSE['method']} weight {FUSE['weight']})={input.fused}")


def tuned_flags(wildcards):
    """evaluate --tuned: the rows whose checkpoint was selected, or whose fusion was tuned,
    on the split's own queries."""
    notes = []
    if SELECT["split"] == wildcards.split:
        n = SELECT["max_queries"]
        sample = f"up to {n} of these queries" if n else "these queries"
        notes += [
            f"reranked=checkpoint selected on {sample}",
            f"fused=checkpoint selected on {sample}",
        ]
    if FUSE["method"] == "auto" and TUNE_SPLIT == wildcards.split:
        notes.append("fused=fusion tuned on these queries")
    baseline = config["evaluate"]["baseline"]
    return " ".join(
        [q(f"--tuned={n}") for n in notes]
        + ([f"--baseline {q(baseline)}"] if baseline else [])
    )
