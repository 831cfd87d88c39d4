"""First stage: BM25, dense bi-encoder retrieval, their fusion, hard negatives
(workflow/rules/first_stage.smk)."""
