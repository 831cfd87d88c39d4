"""Data sources: BEIR datasets (download, dev split), the synthetic demo, title pseudo-queries
(workflow/rules/data.smk, pseudo_queries.smk)."""
