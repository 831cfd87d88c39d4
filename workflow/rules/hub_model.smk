# A copy of the trained model with a model card that carries this run's evaluation (the
# metrics of every evaluated split, first stage vs reranked vs fused): ready to upload with
# `huggingface-cli upload <user>/<name> results/<run>/hub_model`.


rule hub_model:
    input:
        model=rules.train_cross_encoder.output[0],
        metrics=expand(OUT / "eval" / "{split}.metrics.json", split=SPLITS),
        quantization=quantization_input(),
    output:
        directory(OUT / "hub_model"),
    log:
        OUT / "logs" / "hub_model.log",
    conda:
        ENV
    params:
        metrics=metrics_flags,
        quantization=quantization_flag,
    shell:
        "python -m cross_encoder.modeling.card --model_dir {input.model:q}"
        " --output_dir {output:q} {params.metrics} {params.quantization} > {log:q} 2>&1"
