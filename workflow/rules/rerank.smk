# Rerank the top-k of each evaluation split's first-stage ranking. teacher_scores
# (teacher.smk) is this rule applied to the train positives and the train ranking. With
# rerank.shards > 1 each split is scored by that many jobs (scattergather "rerank"), each
# its share of the chunks (--prediction_shard i-of-k), and gather_rerank concatenates them
# in order: the one-job file, byte for byte.
RERANK_SHARDED = RERANK["shards"] > 1
RERANK_SHARD = OUT / "rerank" / "shards" / "{split}.{scatteritem}.scores.tsv"


rule rerank:
    input:
        model=rules.train_cross_encoder.output[0],
        corpus=rules.preprocess_corpus.output.corpus,
        queries=rules.preprocess_queries.output[0],
        ranking=split_ranking,
        quantization=quantization_input(),
    output:
        temp(RERANK_SHARD) if RERANK_SHARDED else OUT / "rerank" / "{split}.scores.tsv",
    log:
        OUT
        / "logs"
        / (
            "rerank_{split}.{scatteritem}.log"
            if RERANK_SHARDED
            else "rerank_{split}.log"
        ),
    benchmark:
        OUT
        / "benchmarks"
        / (
            "rerank_{split}.{scatteritem}.tsv"
            if RERANK_SHARDED
            else "rerank_{split}.tsv"
        )
    conda:
        ENV
    threads: job_threads(RERANK["nproc"])
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=RERANK["nproc"] if TRAIN["use_gpu"] else 0,
    params:
        launcher=torch_launcher(RERANK["nproc"]),
        workdir=str(OUT / "rerank" / "work_{split}"),
        args=with_quantize(
            predict_flags(RERANK["prediction_topk"], prediction_max_len())
        ),
        shard=shard_flag,
    shell:
        slurm_logged(
            f"{rank_threads(RERANK['nproc'])} {{params.launcher}} -m cross_encoder.run"
            " --model_name_or_path {input.model:q} --output_dir {params.workdir:q} --do_predict"
            " --corpus_file {input.corpus:q} --test_query_file {input.queries:q}"
            " --test_file {input.ranking:q} --prediction_save_path {output:q} {params.args}"
            " {params.shard} --report_to none"
        )


if RERANK_SHARDED:

    rule gather_rerank:
        input:
            gather.rerank(str(RERANK_SHARD).replace("{split}", "{{split}}")),
        output:
            OUT / "rerank" / "{split}.scores.tsv",
        log:
            OUT / "logs" / "gather_rerank_{split}.log",
        conda:
            ENV
        shell:
            "python -m cross_encoder.reranking.shards --output {output:q} {input:q}"
            " > {log:q} 2>&1"


# The fusion of the cross-encoder with the first stage, chosen on dev
# (rerank.fuse_with_first_stage.method: auto): every setting tried and the choice.
rule tune_fusion:
    input:
        scores=OUT / "rerank" / f"{TUNE_SPLIT}.scores.tsv",
        ranking=ranking_file(TUNE_SPLIT),
        qrels=qrels_file(TUNE_SPLIT),
        sources=list(fusion_sources(TUNE_SPLIT).values()),
    output:
        OUT / "rerank" / "fusion.json",
    log:
        OUT / "logs" / "tune_fusion.log",
    conda:
        ENV
    params:
        metric=FUSE["metric"] or METRIC,
        sources=source_flags(fusion_sources(TUNE_SPLIT)),
    shell:
        "python -m cross_encoder.reranking.fusion --scores {input.scores:q}"
        " --ranking {input.ranking:q} --tune_qrels {input.qrels:q} --metric {params.metric:q}"
        " --fusion_file {output:q} {params.sources} > {log:q} 2>&1"


# The reranked top-k followed by the first stage's tail (the pure reranked run, so that
# Recall@100 is measured on what the reranker returns), and the run that fuses the
# cross-encoder with the first stage (rerank.fuse_with_first_stage).
rule rerank_fusion:
    input:
        scores=OUT / "rerank" / "{split}.scores.tsv",
        ranking=split_ranking,
        fusion=OUT / "rerank" / "fusion.json" if FUSE["method"] == "auto" else [],
        sources=split_fusion_sources,
    output:
        full=OUT / "rerank" / "{split}.full.tsv",
        fused=OUT / "rerank" / "{split}.fused.tsv" if FUSE["method"] != "none" else [],
    log:
        OUT / "logs" / "rerank_fusion_{split}.log",
    conda:
        ENV
    params:
        how=fusion_how,
        sources=split_source_flags,
        fused=fused_output_flag,
    shell:
        "python -m cross_encoder.reranking.fusion --scores {input.scores:q}"
        " --ranking {input.ranking:q} --output_full {output.full:q} {params.sources}"
        " {params.how} {params.fused} > {log:q} 2>&1"
