"""Training the cross-encoder: arguments, grouped training data, loss, trainer and checkpoint
resume, model selection on dev (workflow/rules/train.smk)."""
