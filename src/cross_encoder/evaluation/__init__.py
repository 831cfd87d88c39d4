"""Evaluation: metrics (ir_measures) and the report's figures (workflow/rules/evaluate.smk,
report.smk)."""
