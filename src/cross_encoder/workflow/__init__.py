"""What the Snakemake workflow runs in its head process: the config check and stale-lock removal
(workflow/rules/common.smk)."""
