"""Distillation: teacher scores and the bi-encoder trained on them (workflow/rules/teacher.smk,
distill.smk)."""
