# Train the cross-encoder (grouped softmax loss, fresh negatives each epoch).
# Checkpoints live in train_state/ (not an output), so an interrupted run resumes there
# when the rule reruns; the finished model is copied to model/ atomically.


rule train_cross_encoder:
    input:
        **selection_inputs(),
        corpus=rules.preprocess_corpus.output.corpus,
        queries=rules.preprocess_train.output.train_query,
        qrels=rules.preprocess_train.output.train_qrels,
        negs=neg_file(),
    output:
        directory(OUT / "model"),
    log:
        OUT / "logs" / "train_cross_encoder.log",
    benchmark:
        OUT / "benchmarks" / "train_cross_encoder.tsv"
    conda:
        ENV
    threads: job_threads(TRAIN["nproc"])
    resources:
        mem_mb=16000,
        runtime=720,
        gpu=TRAIN["nproc"] if TRAIN["use_gpu"] else 0,
    params:
        state=OUT / "train_state",
        launcher=torch_launcher(TRAIN["nproc"]),
        tracking_env=tracking_env(),
        args=flags(
            TRAIN,
            "precision",
            "train_group_size",
            "sample_neg_from_topk",
            "sample_neg_skip_topk",
            "random_negatives",
            "max_len",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "learning_rate",
            "weight_decay",
            "warmup_steps",
            "num_train_epochs",
            "seed",
            optional=(
                "deepspeed",
                "trust_remote_code",
                "head_learning_rate",
                "layerwise_lr_decay",
            ),
            model_name_or_path=TRAIN["model"],
            prediction_max_len=prediction_max_len(),
            report_to=",".join(report_to()),
            require_gpu=TRAIN["use_gpu"],
        ),
        selection=selection_flags,
        extra=extra_args(TRAIN["extra_args"]),
    shell:
        slurm_logged(
            f"{rank_threads(TRAIN['nproc'])} {{params.tracking_env}} exec {{params.launcher}}"
            " -m cross_encoder.run"
            " --output_dir {params.state:q} --final_model_dir {output:q} --do_train"
            " --corpus_file {input.corpus:q} --train_query_file {input.queries:q}"
            " --train_qrels {input.qrels:q} --neg_file {input.negs:q} {params.args}"
            " {params.selection} --save_total_limit 2 --logging_steps 10"
            " --dataloader_num_workers 0 {params.extra}",
            replaces_shell=True,
        )
