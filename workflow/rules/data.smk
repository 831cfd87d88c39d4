# The embedded default: a generated MS MARCO-format dataset (no user files, no network).


rule generate_synthetic:
    output:
        multiext(
            str(DATA / source_tag()) + "/",
            "corpus.tsv",
            "train.query.txt",
            "dev.query.txt",
            "qrels.train.tsv",
            "qrels.dev.tsv",
        ),
    log:
        str(DATA / "logs" / f"generate_{source_tag()}.log"),
    conda:
        ENV
    params:
        outdir=lambda w, output: os.path.dirname(output[0]),
        seed=config["data"]["synthetic"]["seed"],
        n_train=config["data"]["synthetic"]["n_train"],
        n_dev=config["data"]["synthetic"]["n_dev"],
    shell:
        "python -m cross_encoder.synthetic --output_dir {params.outdir:q} --seed {params.seed}"
        " --n_train {params.n_train} --n_dev {params.n_dev} > {log:q} 2>&1"
