# Cross-encoder reranking pipeline: preprocess -> first stage -> train -> rerank -> evaluate.
# Targets: `eval` (metrics tables + the report's figures; default), `train_teacher_scores`,
# `distill`, `compare` (runs side by side). `snakemake --report report.html` works right after
# `eval`.
# Configure in config/config.yaml (schema: workflow/schemas/config.schema.yaml); local runs
# use profiles/default automatically.
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


# The embedded demo's settings (a five-minute budget) apply only when no --configfile is
# given: a config of yours starts from the schema's defaults, the recipe measured on real data
# (workflow/schemas/config.schema.yaml), plus what it sets. --config key=value overrides
# either.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/common_data.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/common_preprocess.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/first_stage.smk"
include: "workflow/rules/pseudo_queries.smk"
include: "workflow/rules/common_train.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/common_quantize.smk"
include: "workflow/rules/quantize.smk"
include: "workflow/rules/common_rerank.smk"
include: "workflow/rules/rerank.smk"
include: "workflow/rules/common_evaluate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/common_report.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/common_compare.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/hub_model.smk"
include: "workflow/rules/common_distill.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/distill.smk"


# The report's figures are built with the tables, so that `snakemake --report report.html`
# works right after the main job; hub_model/ is the model with a card carrying the metrics.
rule eval:
    input:
        tables=eval_targets(),
        figures=report_targets(),
        hub_model=rules.hub_model.output[0],
    log:
        OUT / "logs" / "eval.log",
    run:
        print_tables(input.tables, log[0])


rule all:
    default_target: True
    input:
        rules.eval.input,


# Distillation: `train_teacher_scores` writes RetroMAE's teacher score files and neg_file;
# `distill` trains the bi-encoder on them and prints dense before/after vs reranked.
rule train_teacher_scores:
    input:
        **teacher_files(),
    log:
        OUT / "logs" / "train_teacher_scores.log",
    localrule: True
    run:
        print_teacher_summary(dict(input.items()), log[0])


rule distill:
    input:
        distill_table_targets(),
    log:
        OUT / "logs" / "distill.log",
    localrule: True
    run:
        print_tables(input, log[0])
