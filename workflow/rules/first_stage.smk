# First stage: BM25 rankings for train and evaluation queries, and hard negatives.
# Skipped for a split when the config names the user's own ranking (first_stage.rankings)
# and for training when it names a neg_file.


rule bm25_index:
    input:
        corpus=raw_file("corpus"),
    output:
        directory(OUT / "first_stage" / "bm25_index"),
    log:
        OUT / "logs" / "bm25_index.log",
    benchmark:
        OUT / "benchmarks" / "bm25_index.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        args=flags(FIRST["bm25"], "k1", "b", "stopwords", "stemmer"),
    shell:
        slurm_logged(
            "python -m cross_encoder.first_stage.bm25 --corpus_file {input.corpus:q} --index_dir {output:q}"
            " {params.args}"
        )


rule retrieve_bm25:
    input:
        index=OUT / "first_stage" / "bm25_index",
        queries=split_query_file,
    output:
        OUT / "first_stage" / "{split}.bm25.tsv",
    log:
        OUT / "logs" / "retrieve_bm25_{split}.log",
    benchmark:
        OUT / "benchmarks" / "retrieve_bm25_{split}.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        args=flags(FIRST["bm25"], "stemmer", depth=FIRST["depth"]),
    shell:
        slurm_logged(
            "python -m cross_encoder.first_stage.bm25 --index_dir {input.index:q} --query_file {input.queries:q}"
            " {params.args} --output_ranking {output:q}"
        )


rule hard_negatives:
    input:
        ranking=ranking_file("train"),
        qrels=qrels_file("train"),
    output:
        OUT / "first_stage" / "train.negs.tsv",
    log:
        OUT / "logs" / "hard_negatives.log",
    conda:
        ENV
    params:
        depth=FIRST["depth"],
    shell:
        "python -m cross_encoder.first_stage.negatives --ranking_file {input.ranking:q}"
        " --qrels_file {input.qrels:q} --output_file {output:q} --depth {params.depth}"
        " > {log:q} 2>&1"


rule dense_index:
    input:
        corpus=raw_file("corpus"),
    output:
        directory(OUT / "first_stage" / "dense_index"),
    log:
        OUT / "logs" / "dense_index.log",
    benchmark:
        OUT / "benchmarks" / "dense_index.tsv"
    conda:
        ENV
    threads: job_threads(1)
    resources:
        mem_mb=8000,  # the corpus streams through in chunks: bounded at any size
        runtime=240,
        gpu=1 if TRAIN["use_gpu"] else 0,
    params:
        args=encode_flags(FIRST["dense"]),
    shell:
        slurm_logged(
            "OMP_NUM_THREADS={threads} python -m cross_encoder.first_stage.dense encode {params.args}"
            " --corpus_file {input.corpus:q} --index_dir {output:q}"
        )


rule retrieve_dense:
    input:
        index=OUT / "first_stage" / "dense_index",
        queries=split_query_file,
    output:
        OUT / "first_stage" / "{split}.dense.tsv",
    log:
        OUT / "logs" / "retrieve_dense_{split}.log",
    conda:
        ENV
    threads: job_threads(1)
    resources:
        mem_mb=8000,  # the index is memory-mapped, top-k runs over chunks
        runtime=60,
        gpu=1 if TRAIN["use_gpu"] else 0,
    params:
        args=search_flags(FIRST["dense"]),
        depth=FIRST["depth"],
    shell:
        slurm_logged(
            "OMP_NUM_THREADS={threads} python -m cross_encoder.first_stage.dense search {params.args}"
            " --index_dir {input.index:q} --query_file {input.queries:q} --depth {params.depth}"
            " --output_ranking {output:q}"
        )


rule fuse_hybrid:
    input:
        bm25=OUT / "first_stage" / "{split}.bm25.tsv",
        dense=OUT / "first_stage" / "{split}.dense.tsv",
    output:
        OUT / "first_stage" / "{split}.hybrid.tsv",
    log:
        OUT / "logs" / "fuse_hybrid_{split}.log",
    conda:
        ENV
    params:
        args=flags(FIRST["hybrid"], "k", depth=FIRST["depth"]),
    shell:
        "python -m cross_encoder.first_stage.fusion --ranking {input.bm25:q} --ranking {input.dense:q}"
        " {params.args} --output_ranking {output:q} > {log:q} 2>&1"
