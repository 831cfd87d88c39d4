# Figures for `snakemake --report report.html`: metrics by stage, the per-query nDCG@10
# change from reranking, each row's per-query difference to the baseline with its interval,
# and the training loss curve (cross_encoder.evaluation.report).


rule report_metrics:
    input:
        metrics=expand(OUT / "eval" / "{split}.metrics.json", split=SPLITS),
    output:
        plot=report(
            OUT / "report" / "metrics.png",
            caption="../report/metrics.rst",
            category="Metrics",
        ),
        table=report(
            OUT / "report" / "metrics.tsv",
            caption="../report/metrics_table.rst",
            category="Metrics",
        ),
    log:
        OUT / "logs" / "report_metrics.log",
    conda:
        ENV
    params:
        args=metrics_flags,
    shell:
        "python -m cross_encoder.evaluation.report metrics {params.args} --plot {output.plot:q}"
        " --table {output.table:q} > {log:q} 2>&1"


rule report_delta:
    input:
        per_query=expand(OUT / "eval" / "{split}.per_query.tsv", split=SPLITS),
    output:
        report(
            OUT / "report" / "ndcg_delta.png",
            caption="../report/ndcg_delta.rst",
            category="Per query",
        ),
    log:
        OUT / "logs" / "report_delta.log",
    conda:
        ENV
    params:
        args=per_query_flags,
    shell:
        "python -m cross_encoder.evaluation.report delta {params.args} --metric nDCG@10"
        " --plot {output:q} > {log:q} 2>&1"


rule report_loss:
    input:
        rules.train_cross_encoder.output[0],
    output:
        report(
            OUT / "report" / "train_loss.png",
            caption="../report/train_loss.rst",
            category="Training",
        ),
    log:
        OUT / "logs" / "report_loss.log",
    conda:
        ENV
    shell:
        "python -m cross_encoder.evaluation.report loss --trainer_state {input:q}/trainer_state.json"
        " --plot {output:q} > {log:q} 2>&1"


rule report_significance:
    input:
        metrics=expand(OUT / "eval" / "{split}.metrics.json", split=SPLITS),
        per_query=expand(OUT / "eval" / "{split}.per_query.tsv", split=SPLITS),
    output:
        report(
            OUT / "report" / "significance.png",
            caption="../report/significance.rst",
            category="Per query",
        ),
    log:
        OUT / "logs" / "report_significance.log",
    conda:
        ENV
    params:
        metrics=metrics_flags,
        per_query=per_query_flags,
        metric="nDCG@10" if "nDCG@10" in config["evaluate"]["metrics"] else METRIC,
    shell:
        "python -m cross_encoder.evaluation.report significance {params.metrics}"
        " {params.per_query} --metric {params.metric:q} --plot {output:q} > {log:q} 2>&1"
