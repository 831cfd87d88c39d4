"""Reranking: scoring pairs (torch, OpenVINO), fusion of the reranker with the first stage
(workflow/rules/rerank.smk)."""
