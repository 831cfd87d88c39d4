# Close the loop: distil the cross-encoder's teacher scores into the bi-encoder (KL to the
# teacher's softmax over positive + sampled negatives, plus a small contrastive term),
# re-encode the corpus with it, retrieve for the evaluation splits, and compare dense
# before / after distillation with the reranked run in one table.


rule distill_bi_encoder:
    input:
        teacher=[teacher_files()["qrels_score"], teacher_files()["rerank_score"]],
        negs=teacher_files()["negs"],
        check=teacher_files()["check"],
        qrels=rules.preprocess_train.output.train_qrels,
        corpus=raw_file("corpus"),
        queries=query_file("train"),
    output:
        directory(DISTILL_DIR / "model"),
    log:
        OUT / "logs" / "distill_bi_encoder.log",
    benchmark:
        OUT / "benchmarks" / "distill_bi_encoder.tsv"
    conda:
        ENV
    threads: job_threads(1)
    resources:
        mem_mb=16000,
        runtime=720,
        gpu=1 if TRAIN["use_gpu"] else 0,
    params:
        scores=teacher_score_list,
        args=flags(
            DISTILL,
            "model",
            "epochs",
            "learning_rate",
            "batch_size",
            "group_size",
            "temperature",
            "teacher_temperature",
            "kl_weight",
            "contrastive_weight",
            "max_len",
            "seed",
            "precision",
            sample_neg_from_topk=teacher_topk(),
            require_gpu=TRAIN["use_gpu"],
        ),
        # off is --no-in_batch_negatives (argparse.BooleanOptionalAction); on is the default
        in_batch="" if DISTILL["in_batch_negatives"] else "--no-in_batch_negatives",
    shell:
        slurm_logged(
            "OMP_NUM_THREADS={threads} python -m cross_encoder.distillation.distill"
            " --output_dir {output:q} --corpus_file {input.corpus:q}"
            " --train_query_file {input.queries:q} --train_qrels {input.qrels:q}"
            " --neg_file {input.negs:q} --teacher_score_files {params.scores:q}"
            " {params.args} {params.in_batch}"
        )


# The undistilled (base) and distilled (student) bi-encoder encode the corpus and retrieve
# for the evaluation splits as the first stage's dense retriever does (first_stage.smk).
use rule dense_index as distill_dense_index with:
    input:
        model=student_model,
        corpus=raw_file("corpus"),
    output:
        directory(DISTILL_DIR / "{stage}" / "dense_index"),
    log:
        OUT / "logs" / "distill_dense_index_{stage}.log",
    benchmark:
        OUT / "benchmarks" / "distill_dense_index_{stage}.tsv"
    wildcard_constraints:
        stage="base|student",
    params:
        args=stage_encode_flags,


use rule retrieve_dense as distill_retrieve with:
    input:
        index=DISTILL_DIR / "{stage}" / "dense_index",
        queries=split_query_file,
    output:
        DISTILL_DIR / "{stage}" / "{split}.dense.tsv",
    log:
        OUT / "logs" / "distill_retrieve_{stage}_{split}.log",
    wildcard_constraints:
        stage="base|student",
    params:
        args=stage_search_flags,


rule distill_evaluate:
    input:
        runs=distill_run_files,
        qrels=split_qrels,
    output:
        table=DISTILL_DIR / "eval" / "{split}.table.txt",
        metrics=DISTILL_DIR / "eval" / "{split}.metrics.json",
    log:
        OUT / "logs" / "distill_evaluate_{split}.log",
    conda:
        ENV
    params:
        runs=distill_run_flags,
        metrics=",".join(config["evaluate"]["metrics"]),
    shell:
        "python -m cross_encoder.evaluate --qrels_file {input.qrels:q} {params.runs}"
        " --metrics {params.metrics:q} --output_json {output.metrics:q}"
        " --table_file {output.table:q} > {log:q} 2>&1"
