# Teacher scores for distillation (the README's "train the bi-encoder to learn from the
# cross-encoder"): the trained cross-encoder scores every train positive and the top-k of
# the train first-stage ranking, in the `qid pid score` files RetroMAE's bi-encoder reads
# with --teacher_score_files; the neg_file that goes with them comes from the same ranking
# at the same depth, and a check proves every pair it can sample has a score.


# The neg_file that goes with the scores: hard_negatives of the train ranking at teacher_topk().
use rule hard_negatives as teacher_negatives with:
    output:
        teacher_files()["negs"],
    log:
        OUT / "logs" / "teacher_negatives.log",
    params:
        depth=teacher_topk(),


rule teacher_scores:
    input:
        model=OUT / "model",
        corpus=OUT / "tokenized" / "corpus",
        queries=OUT / "tokenized" / "train_query",
        qrels=OUT / "tokenized" / "train_qrels.txt",
        ranking=ranking_file("train"),
    output:
        qrels_score=teacher_files()["qrels_score"],
        rerank_score=teacher_files()["rerank_score"],
    log:
        OUT / "logs" / "teacher_scores.log",
    benchmark:
        OUT / "benchmarks" / "teacher_scores.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=480,
        gpu=config["rerank"]["nproc"] if TRAIN["use_gpu"] else 0,
    params:
        launcher=torch_launcher(config["rerank"]["nproc"]),
        workdir=TEACHER_DIR / "work",
        topk=teacher_topk(),
        max_len=TRAIN["max_len"],
        tokens=config["rerank"]["batch_tokens"],
        precision=config["rerank"]["precision"],
        backend=config["rerank"]["backend"],
    shell:
        slurm_logged(
            "OMP_NUM_THREADS={threads} {params.launcher} -m cross_encoder.run"
            " --model_name_or_path {input.model:q} --output_dir {params.workdir:q} --do_predict"
            " --corpus_file {input.corpus:q} --test_query_file {input.queries:q}"
            " --test_file {input.qrels:q} --max_len {params.max_len}"
            " --prediction_batch_tokens {params.tokens} --precision {params.precision}"
            " --backend {params.backend} --prediction_save_path {output.qrels_score:q}"
            " --report_to none"
            " && OMP_NUM_THREADS={threads} {params.launcher} -m cross_encoder.run"
            " --model_name_or_path {input.model:q} --output_dir {params.workdir:q} --do_predict"
            " --corpus_file {input.corpus:q} --test_query_file {input.queries:q}"
            " --test_file {input.ranking:q} --prediction_topk {params.topk}"
            " --max_len {params.max_len} --prediction_batch_tokens {params.tokens}"
            " --precision {params.precision} --backend {params.backend}"
            " --prediction_save_path {output.rerank_score:q} --report_to none"
        )


rule check_teacher_scores:
    input:
        qrels_score=teacher_files()["qrels_score"],
        rerank_score=teacher_files()["rerank_score"],
        negs=teacher_files()["negs"],
        qrels=OUT / "tokenized" / "train_qrels.txt",
    output:
        teacher_files()["check"],
    log:
        OUT / "logs" / "check_teacher_scores.log",
    conda:
        ENV
    params:
        topk=teacher_topk(),
        group=config["distill"]["group_size"],
    shell:
        "python -m cross_encoder.teacher check"
        " --teacher_score_files {input.qrels_score:q},{input.rerank_score:q}"
        " --train_qrels {input.qrels:q} --neg_file {input.negs:q}"
        " --sample_neg_from_topk {params.topk} --train_group_size {params.group}"
        " --report {output:q} > {log:q} 2>&1"
