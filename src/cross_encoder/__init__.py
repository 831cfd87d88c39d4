"""Cross-encoder reranking pipeline (RetroMAE-compatible)."""

__version__ = "0.1.0"
