"""Cross-encoder reranking pipeline (RetroMAE-compatible)."""

from cross_encoder import deprecated as _deprecated

__version__ = "0.1.0"

_deprecated.install()  # module names from before the stage split warn and forward
