# Train the cross-encoder (grouped softmax loss, fresh negatives each epoch).
# Checkpoints live in train_state/ (not an output), so an interrupted run resumes there
# when the rule reruns; the finished model is copied to model/ atomically.


rule train_cross_encoder:
    input:
        **selection_inputs(),
        corpus=OUT / "tokenized" / "corpus",
        queries=OUT / "tokenized" / "train_query",
        qrels=OUT / "tokenized" / "train_qrels.txt",
        negs=neg_file(),
    output:
        directory(OUT / "model"),
    log:
        OUT / "logs" / "train_cross_encoder.log",
    benchmark:
        OUT / "benchmarks" / "train_cross_encoder.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=16000,
        runtime=720,
        gpu=TRAIN["nproc"] if TRAIN["use_gpu"] else 0,
    params:
        state=OUT / "train_state",
        launcher=torch_launcher(TRAIN["nproc"]),
        model=TRAIN["model"],
        deepspeed=lambda w: (
            f"--deepspeed {q(TRAIN['deepspeed'])}" if TRAIN["deepspeed"] else ""
        ),
        precision=precision_flags(),
        remote_code=remote_code_flag(),
        group=TRAIN["train_group_size"],
        topk=TRAIN["sample_neg_from_topk"],
        skip=TRAIN["sample_neg_skip_topk"],
        random_negs=TRAIN["random_negatives"],
        max_len=TRAIN["max_len"],
        predict_len=prediction_max_len(),
        head_lr=(
            f"--head_learning_rate {TRAIN['head_learning_rate']}"
            if TRAIN["head_learning_rate"]
            else ""
        ),
        layer_decay=(
            f"--layerwise_lr_decay {TRAIN['layerwise_lr_decay']}"
            if TRAIN["layerwise_lr_decay"]
            else ""
        ),
        selection=selection_flags,
        batch=TRAIN["per_device_train_batch_size"],
        accum=TRAIN["gradient_accumulation_steps"],
        lr=TRAIN["learning_rate"],
        wd=TRAIN["weight_decay"],
        warmup=TRAIN["warmup_steps"],
        epochs=TRAIN["num_train_epochs"],
        seed=TRAIN["seed"],
        report_to=tracking_flags(),
        tracking_env=tracking_env(),
        extra=extra_args(TRAIN["extra_args"]),
    shell:
        slurm_logged(
            "{params.tracking_env} OMP_NUM_THREADS={threads} {params.launcher} -m cross_encoder.run"
            " --model_name_or_path {params.model:q} --output_dir {params.state:q}"
            " --final_model_dir {output:q} --do_train {params.deepspeed} {params.precision}"
            " {params.remote_code}"
            " --corpus_file {input.corpus:q} --train_query_file {input.queries:q}"
            " --train_qrels {input.qrels:q} --neg_file {input.negs:q}"
            " --train_group_size {params.group} --sample_neg_from_topk {params.topk}"
            " --sample_neg_skip_topk {params.skip} --random_negatives {params.random_negs}"
            " --max_len {params.max_len} --prediction_max_len {params.predict_len}"
            " --per_device_train_batch_size {params.batch}"
            " --gradient_accumulation_steps {params.accum} --learning_rate {params.lr}"
            " {params.head_lr} {params.layer_decay}"
            " --weight_decay {params.wd} --warmup_steps {params.warmup}"
            " --num_train_epochs {params.epochs} --seed {params.seed}"
            " {params.selection} --save_total_limit 2 --logging_steps 10"
            " {params.report_to} --dataloader_num_workers 0 {params.extra}"
        )
