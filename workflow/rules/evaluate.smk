# MRR@10, nDCG@10, Recall@k of the first stage and the reranked run, side by side.


rule evaluate:
    input:
        scores=OUT / "rerank" / "{split}.full.tsv",
        fused=OUT / "rerank" / "{split}.fused.tsv" if FUSE["method"] != "none" else [],
        fusion=OUT / "rerank" / "fusion.json" if FUSE["method"] == "auto" else [],
        ranking=split_ranking,
        qrels=split_qrels,
    output:
        table=OUT / "eval" / "{split}.table.txt",
        metrics=OUT / "eval" / "{split}.metrics.json",
        per_query=OUT / "eval" / "{split}.per_query.tsv",
        ranked=OUT / "rerank" / "{split}.full.tsv.ranked_results",
    log:
        OUT / "logs" / "evaluate_{split}.log",
    conda:
        ENV
    params:
        metrics=",".join(config["evaluate"]["metrics"]),
        fused=fused_run_flags,
        tuned=tuned_flags,
    shell:
        slurm_logged(
            "python -m cross_encoder.evaluate --score_file {input.scores:q}"
            " --first_stage_file {input.ranking:q} --qrels_file {input.qrels:q}"
            " --metrics {params.metrics:q} --output_json {output.metrics:q}"
            " --per_query_file {output.per_query:q} --table_file {output.table:q} {params.fused}"
            " {params.tuned}"
        )
