# Tokenize corpus and queries once into Parquet folders (RetroMAE's preprocess.py). Each
# folder records its tokenizer (tokenizer_identity.json), which cross_encoder.run checks
# against the model's; another tokenizer (a changed train.model when preprocess.tokenizer
# is null) re-tokenizes: params.args changes, and a local one's files are inputs.


rule preprocess:
    input:
        corpus=training_file("corpus"),
        train_queries=training_file("train_queries"),
        train_qrels=training_file("train_qrels"),
        eval_queries=[query_file(s) for s in QUERY_SPLITS],
        tokenizer=tokenizer_files(),
    output:
        corpus=directory(OUT / "tokenized" / "corpus"),
        train_query=directory(OUT / "tokenized" / "train_query"),
        queries=[directory(OUT / "tokenized" / f"{s}_query") for s in QUERY_SPLITS],
        train_qrels=OUT / "tokenized" / "train_qrels.txt",
    log:
        OUT / "logs" / "preprocess.log",
    benchmark:
        OUT / "benchmarks" / "preprocess.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        outdir=OUT / "tokenized",
        args=flags(
            config["preprocess"],
            "max_len",
            optional=("use_title",),
            tokenizer_name=tokenizer_name(),
            trust_remote_code=TRAIN["trust_remote_code"],
        ),
        eval_queries=eval_query_flags,
    shell:
        slurm_logged(
            "python -m cross_encoder.preprocess --output_dir {params.outdir:q} {params.args}"
            " --corpus_file {input.corpus:q} --train_query_file {input.train_queries:q}"
            " --train_qrels {input.train_qrels:q}"
            " {params.eval_queries}"
        )
