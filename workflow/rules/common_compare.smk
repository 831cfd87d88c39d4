# Helpers of the compare target (compare.smk).


def compare_runs():
    runs = config["compare"]["runs"]
    if len(runs) < 2:
        raise WorkflowError(
            "target compare: set compare.runs to two run names or more, e.g."
            ' --config \'compare={"runs": ["a", "b"], "baseline": "a"}\''
        )
    return runs


def compare_inputs(wildcards):
    """Every run's evaluation outputs; a run not evaluated yet is made only when it is this
    config's run_name (evaluate the others with their own config first)."""
    root = Path(config["results_dir"])
    return [
        str(root / run / "eval" / f"{split}.{kind}")
        for run in compare_runs()
        for split in SPLITS
        for kind in ("per_query.tsv", "metrics.json")
    ]


def compare_flags(wildcards):
    root = Path(config["results_dir"])
    c = config["compare"]
    return " ".join(
        [q(root / run) for run in compare_runs()]
        + [f"--splits {q(','.join(SPLITS))}", f"--row {q(c['row'])}"]
        + ([f"--baseline {q(c['baseline'])}"] if c["baseline"] else [])
    )


COMPARE_DIR = (
    Path(config["results_dir"]) / "compare" / "_vs_".join(config["compare"]["runs"])
)
