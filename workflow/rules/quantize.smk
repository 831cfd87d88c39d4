# The static int8 model and its dev guard (rerank.quantize: int8 | auto): the trained model
# quantized by OpenVINO + NNCF, calibrated on a seeded sample of the train pairs, accepted only
# if it ranks the dev top-k as well as full precision (rerank.quantization thresholds);
# rerank/quantization.json holds the decision and its figures, rerank/int8/ the accepted model.
# rerank (and teacher_scores with teacher.quantize) reuse the decision.


rule quantize:
    input:
        model=OUT / "model",
        corpus=OUT / "tokenized" / "corpus",
        dev_queries=OUT / "tokenized" / "dev_query",
        dev_ranking=ranking_file("dev"),
        dev_qrels=qrels_file("dev"),
        train_queries=OUT / "tokenized" / "train_query",
        train_qrels=OUT / "tokenized" / "train_qrels.txt",
        negs=neg_file(),
    output:
        report(
            OUT / "rerank" / "quantization.json",
            caption="../report/quantization.rst",
            category="Reranking",
        ),
    log:
        OUT / "logs" / "quantize.log",
    benchmark:
        OUT / "benchmarks" / "quantize.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        workdir=str(OUT / "rerank" / "work_quantize"),
        args=predict_flags(RERANK["prediction_topk"], prediction_max_len()),
        quantize=quantize_flags(),
        metric=quantize_metric(),
    shell:
        "OMP_NUM_THREADS={threads} python -m cross_encoder.reranking.quantize"
        " --model_name_or_path {input.model:q} --output_dir {params.workdir:q}"
        " --corpus_file {input.corpus:q} --eval_query_file {input.dev_queries:q}"
        " --eval_file {input.dev_ranking:q} --eval_qrels {input.dev_qrels:q}"
        " --eval_metrics {params.metric:q} --metric_for_best_model {params.metric:q}"
        " --train_query_file {input.train_queries:q} --train_qrels {input.train_qrels:q}"
        " --neg_file {input.negs:q} {params.args} {params.quantize} --report_to none"
        " --disable_tqdm true > {log:q} 2>&1"
