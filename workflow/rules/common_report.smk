# Helpers of report.smk (and of the `eval` target in the Snakefile).


def per_query_flags(wildcards, input):
    return split_flags("per_query", input.per_query)


def report_targets():
    """Figures for `snakemake --report` (workflow/rules/report.smk)."""
    names = [
        "metrics.png",
        "metrics.tsv",
        "ndcg_delta.png",
        "significance.png",
        "train_loss.png",
    ]
    return [str(OUT / "report" / n) for n in names]
