# Runs of the same data side by side (target `compare`): per split, each run's reranked row
# (compare.row) tested against the baseline run's, over the queries every run judged
# (cross_encoder.compare). Set the runs with --config 'compare={"runs": ["a", "b"]}'.


rule compare:
    input:
        compare_inputs,
    output:
        tables=[COMPARE_DIR / f"{split}.table.txt" for split in SPLITS],
        json=COMPARE_DIR / "compare.json",
        plot=report(
            COMPARE_DIR / "compare.png",
            caption="../report/compare.rst",
            category="Compare runs",
        ),
    log:
        COMPARE_DIR / "compare.log",
    localrule: True
    conda:
        ENV
    params:
        args=compare_flags,
        outdir=output_folder,
    shell:
        "python -m cross_encoder.compare {params.args} --output_dir {params.outdir:q}"
        " > {log:q} 2>&1 && cat {output.tables:q}"
