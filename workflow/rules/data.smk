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
            "test.query.txt",
            "qrels.test.tsv",
        ),
    log:
        str(DATA / "logs" / f"generate_{source_tag()}.log"),
    conda:
        ENV
    params:
        outdir=output_folder,
        args=flags(config["data"]["synthetic"], "seed", "n_train", "n_dev", "n_test"),
    shell:
        "python -m cross_encoder.data.synthetic --output_dir {params.outdir:q} {params.args}"
        " > {log:q} 2>&1"


# A BEIR dataset (data.source: beir): query and qrels files per split, dev carved from
# train with a seed; the corpus is read in place from <data_dir>/corpus.jsonl.
ruleorder: beir_split > generate_synthetic


rule beir_split:
    input:
        unpack(beir_inputs),
    output:
        multiext(
            str(DATA) + "/beir-{dataset}-dev{n_dev}-seed{seed}/",
            "train.query.txt",
            "dev.query.txt",
            "test.query.txt",
            "qrels.train.tsv",
            "qrels.dev.tsv",
            "qrels.test.tsv",
        ),
    log:
        str(DATA / "logs" / "beir-{dataset}-dev{n_dev}-seed{seed}.log"),
    wildcard_constraints:
        dataset="[A-Za-z0-9][A-Za-z0-9._-]*",
        n_dev="[0-9]+",
        seed="-?[0-9]+",
    conda:
        ENV
    params:
        data_dir=beir_dir(),
        outdir=output_folder,
    shell:
        "python -m cross_encoder.data.beir --data_dir {params.data_dir:q}"
        " --output_dir {params.outdir:q} --n_dev {wildcards.n_dev} --seed {wildcards.seed}"
        " > {log:q} 2>&1"


# Used only when the config gives no data_dir: fetch a BEIR dataset by name from the
# official mirror, md5-checked and unpacked atomically (cross_encoder.data.download).
rule download:
    output:
        corpus="resources/beir/{dataset}/corpus.jsonl",
        queries="resources/beir/{dataset}/queries.jsonl",
        train_qrels="resources/beir/{dataset}/qrels/train.tsv",
        test_qrels="resources/beir/{dataset}/qrels/test.tsv",
    log:
        "resources/beir/logs/download_{dataset}.log",
    wildcard_constraints:
        dataset="[A-Za-z0-9][A-Za-z0-9._-]*",
    conda:
        ENV
    resources:
        runtime=60,
    params:
        outdir="resources/beir/{dataset}",
    shell:
        # Snakemake pre-creates the (empty) output folders; the download moves the whole
        # dataset into place in one rename, which needs them gone or empty.
        "(rmdir {params.outdir:q}/qrels {params.outdir:q} 2>/dev/null || true;"
        " python -m cross_encoder.data.download --dataset {wildcards.dataset:q}"
        " --output_dir {params.outdir:q}) > {log:q} 2>&1"
