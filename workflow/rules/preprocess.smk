# Tokenize into Parquet folders (RetroMAE's preprocess.py), one job per part: the corpus, the
# train queries with their qrels (checked against the tokenized corpus), and each evaluation
# query set (one rule with a wildcard), so that adding or changing a test split tokenizes only
# that split and retrains nothing. Each folder records its tokenizer
# (tokenizer_identity.json), which cross_encoder.run checks against the model's; another
# tokenizer (a changed train.model when preprocess.tokenizer is null) re-tokenizes: params.args
# changes, and a local one's files are inputs.


rule preprocess_corpus:
    input:
        corpus=training_file("corpus"),
        tokenizer=tokenizer_files(),
    output:
        corpus=directory(OUT / "tokenized" / "corpus"),
    log:
        OUT / "logs" / "preprocess_corpus.log",
    benchmark:
        OUT / "benchmarks" / "preprocess_corpus.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        outdir=OUT / "tokenized",
        args=preprocess_flags(),
    shell:
        slurm_logged(
            "python -m cross_encoder.preprocess --output_dir {params.outdir:q} {params.args}"
            " --corpus_file {input.corpus:q} --train_query_file '' --dev_query_file ''"
        )


rule preprocess_train:
    input:
        train_queries=training_file("train_queries"),
        train_qrels=training_file("train_qrels"),
        corpus=rules.preprocess_corpus.output.corpus,
        tokenizer=tokenizer_files(),
    output:
        train_query=directory(OUT / "tokenized" / "train_query"),
        train_qrels=OUT / "tokenized" / "train_qrels.txt",
    log:
        OUT / "logs" / "preprocess_train.log",
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        outdir=OUT / "tokenized",
        args=preprocess_flags(),
    shell:
        slurm_logged(
            "python -m cross_encoder.preprocess --output_dir {params.outdir:q} {params.args}"
            " --corpus_file '' --train_query_file {input.train_queries:q}"
            " --train_qrels {input.train_qrels:q} --dev_query_file ''"
        )


rule preprocess_queries:
    input:
        queries=split_query_file,
        tokenizer=tokenizer_files(),
    output:
        directory(OUT / "tokenized" / "{split}_query"),
    log:
        OUT / "logs" / "preprocess_{split}_query.log",
    wildcard_constraints:
        split="dev|test",
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        outdir=OUT / "tokenized",
        args=preprocess_flags(),
    shell:
        slurm_logged(
            "python -m cross_encoder.preprocess --output_dir {params.outdir:q} {params.args}"
            " --corpus_file '' --train_query_file '' --dev_query_file ''"
            " --{wildcards.split}_query_file {input.queries:q}"
        )
