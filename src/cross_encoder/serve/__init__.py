"""Serve a trained cross-encoder over HTTP (the ``serve`` extra): TEI's and Cohere's rerank
contracts, dynamic batching, the scores ``cross_encoder.run --do_predict`` gives."""

from cross_encoder.serve.cli import main

__all__ = ["main"]
