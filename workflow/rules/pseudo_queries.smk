# Title pseudo-queries (train.pseudo_queries.n > 0): passage titles as extra training queries
# for their title-less text, with BM25 negatives (cross_encoder.data.pseudo_queries).


rule pseudo_queries:
    input:
        corpus=raw_file("corpus"),
    output:
        OUT / "pseudo" / "pseudo.query.txt",
    log:
        OUT / "logs" / "pseudo_queries.log",
    conda:
        ENV
    params:
        args=flags(TRAIN["pseudo_queries"], "n", "seed", "min_title_words"),
    shell:
        "python -m cross_encoder.data.pseudo_queries queries --corpus_file {input.corpus:q}"
        " {params.args} --output_queries {output:q} > {log:q} 2>&1"


rule pseudo_pairs:
    input:
        corpus=raw_file("corpus"),
        queries=OUT / "pseudo" / "pseudo.query.txt",
        ranking=OUT / "first_stage" / "pseudo.bm25.tsv",
        train_queries=query_file("train"),
        train_qrels=qrels_file("train"),
        train_negs=neg_file(),
    output:
        multiext(
            str(OUT / "pseudo" / "train_aug") + "/",
            *PSEUDO_FILES.values(),
        ),
    log:
        OUT / "logs" / "pseudo_pairs.log",
    conda:
        ENV
    params:
        outdir=output_folder,
        depth=FIRST["depth"],
    shell:
        "python -m cross_encoder.data.pseudo_queries pairs --corpus_file {input.corpus:q}"
        " --pseudo_queries {input.queries:q} --pseudo_ranking {input.ranking:q}"
        " --depth {params.depth} --train_queries {input.train_queries:q}"
        " --train_qrels {input.train_qrels:q} --train_negs {input.train_negs:q}"
        " --output_dir {params.outdir:q} > {log:q} 2>&1"
