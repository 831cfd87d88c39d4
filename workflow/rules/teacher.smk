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


# With teacher.shards > 1 the train ranking is scored by that many jobs (scattergather
# "teacher"), gathered in order into the one-job file (below).
TEACHER_SHARDED = TEACHER["shards"] > 1
TEACHER_SHARD = TEACHER_DIR / "shards" / "train_rerank.{scatteritem}.txt"


# The trained cross-encoder scores, as rerank does, every train positive (kind qrels: the
# tokenized train qrels) and the top teacher_topk() of the train ranking (kind rerank),
# at train.max_len; one job per score file. (use rule replaces a directive as a whole:
# the inputs and resources are rerank's but for the queries, the ranking and the runtime.)
use rule rerank as teacher_scores with:
    input:
        model=OUT / "model",
        corpus=OUT / "tokenized" / "corpus",
        queries=OUT / "tokenized" / "train_query",
        ranking=teacher_scored_pairs,
        quantization=quantization_input(config["teacher"]["quantize"]),
    output:
        TEACHER_DIR / "train_{kind}_score.txt",
    log:
        OUT / "logs" / "teacher_scores_{kind}.log",
    benchmark:
        OUT / "benchmarks" / "teacher_scores_{kind}.tsv"
    wildcard_constraints:
        kind="qrels" if TEACHER_SHARDED else "qrels|rerank",
    resources:
        mem_mb=8000,
        runtime=480,
        gpu=RERANK["nproc"] if TRAIN["use_gpu"] else 0,
    params:
        workdir=TEACHER_DIR / "work",
        args=teacher_predict_flags,


if TEACHER_SHARDED:

    # One shard of the train ranking's teacher scores (--prediction_shard i-of-k).
    use rule rerank as teacher_shard with:
        input:
            model=OUT / "model",
            corpus=OUT / "tokenized" / "corpus",
            queries=OUT / "tokenized" / "train_query",
            ranking=ranking_file("train"),
        output:
            temp(TEACHER_SHARD),
        log:
            OUT / "logs" / "teacher_scores_rerank.{scatteritem}.log",
        benchmark:
            OUT / "benchmarks" / "teacher_scores_rerank.{scatteritem}.tsv"
        resources:
            mem_mb=8000,
            runtime=480,
            gpu=RERANK["nproc"] if TRAIN["use_gpu"] else 0,
        params:
            workdir=TEACHER_DIR / "work",
            args=predict_flags(teacher_topk(), TRAIN["max_len"]),

    rule gather_teacher:
        input:
            gather.teacher(TEACHER_SHARD),
        output:
            teacher_files()["rerank_score"],
        log:
            OUT / "logs" / "gather_teacher.log",
        conda:
            ENV
        shell:
            "python -m cross_encoder.reranking.shards --output {output:q} {input:q}"
            " > {log:q} 2>&1"


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
        "python -m cross_encoder.distillation.teacher check"
        " --teacher_score_files {input.qrels_score:q},{input.rerank_score:q}"
        " --train_qrels {input.qrels:q} --neg_file {input.negs:q}"
        " --sample_neg_from_topk {params.topk} --group_size {params.group}"
        " --report {output:q} > {log:q} 2>&1"
