# Train the cross-encoder (grouped softmax loss, fresh negatives each epoch).
# Checkpoints live in train_state/ (not an output), so an interrupted run resumes there
# when the rule reruns; the finished model is copied to model/ atomically.


rule train_cross_encoder:
    input:
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
        max_len=TRAIN["max_len"],
        batch=TRAIN["per_device_train_batch_size"],
        accum=TRAIN["gradient_accumulation_steps"],
        lr=TRAIN["learning_rate"],
        wd=TRAIN["weight_decay"],
        warmup=TRAIN["warmup_steps"],
        epochs=TRAIN["num_train_epochs"],
        seed=TRAIN["seed"],
        save_steps=TRAIN["save_steps"],
        extra=extra_args(TRAIN["extra_args"]),
    shell:
        "(echo SLURM_JOB_ID=${{SLURM_JOB_ID:-none}};"
        " OMP_NUM_THREADS={threads} {params.launcher} -m cross_encoder.run"
        " --model_name_or_path {params.model:q} --output_dir {params.state:q}"
        " --final_model_dir {output:q} --do_train {params.deepspeed} {params.precision}"
        " {params.remote_code}"
        " --corpus_file {input.corpus:q} --train_query_file {input.queries:q}"
        " --train_qrels {input.qrels:q} --neg_file {input.negs:q}"
        " --train_group_size {params.group} --sample_neg_from_topk {params.topk}"
        " --max_len {params.max_len} --per_device_train_batch_size {params.batch}"
        " --gradient_accumulation_steps {params.accum} --learning_rate {params.lr}"
        " --weight_decay {params.wd} --warmup_steps {params.warmup}"
        " --num_train_epochs {params.epochs} --seed {params.seed}"
        " --save_steps {params.save_steps} --save_total_limit 2 --logging_steps 10"
        " --report_to none --dataloader_num_workers 0 {params.extra}) > {log:q} 2>&1"
