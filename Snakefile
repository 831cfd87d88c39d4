# Cross-encoder reranking pipeline: preprocess -> first stage -> train -> rerank -> evaluate.
# Targets: `eval` (default), `all`. Configure in config/config.yaml (schema:
# workflow/schemas/config.schema.yaml); local runs use profiles/default automatically.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/retrieve.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/rerank.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule eval:
    input:
        eval_targets(),
    log:
        OUT / "logs" / "eval.log",
    run:
        print_tables(input, log[0])


rule all:
    default_target: True
    input:
        rules.eval.input,
        report_targets(),
