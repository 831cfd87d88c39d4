"""``python -m cross_encoder.serve --model results/<run>/hub_model`` (``cross-encoder-serve``):
load the model as predict does, then serve it with uvicorn until SIGTERM or Ctrl-C, which stop
accepting connections, finish the requests in flight and exit 0."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from cross_encoder.io import InputError, cli, setup_logging

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'cross-encoder-rerank[serve]'"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.serve",
        description="Serve a cross-encoder over HTTP: TEI's POST /rerank, Cohere's POST "
        "/v1/rerank and /v2/rerank, GET /health, /info, /metrics.",
    )
    p.add_argument("--model", required=True, help="model folder (results/<run>/hub_model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="as predict's --precision: auto is bf16 on an AMX CPU, else fp32",
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "openvino"],
        help="torch, openvino (the openvino extra), or auto: on a CPU with the extra, both "
        "timed at start-up on probe pairs and the faster kept (/info says which and why)",
    )
    p.add_argument(
        "--quantize",
        default="auto",
        choices=["auto", "int8", "none"],
        help="serve the int8 model the run's quantize step accepted on dev "
        "(rerank/quantization.json next to the model folder): int8 where accepted, auto where "
        "accepted and faster here, none: full precision",
    )
    p.add_argument(
        "--quantization_file",
        default=None,
        help="the quantize step's decision (default: <model>/quantization.json, then "
        "<model>/../rerank/quantization.json)",
    )
    p.add_argument(
        "--max_len",
        type=int,
        default=None,
        help="max tokens of a pair (default: the model's saved max length)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument(
        "--max_batch_tokens",
        type=int,
        default=8192,
        help="padded tokens per model batch (length-sorted batches)",
    )
    p.add_argument("--max_batch_pairs", type=int, default=256, help="pairs per model batch")
    p.add_argument(
        "--max_wait_ms",
        type=float,
        default=5.0,
        help="wait at most this long for other requests to batch with",
    )
    p.add_argument(
        "--max_queue_pairs",
        type=int,
        default=8192,
        help="pairs admitted at once; past it requests get 429 + Retry-After",
    )
    p.add_argument(
        "--max_texts", type=int, default=1000, help="texts (documents) per request; more get 413"
    )
    p.add_argument("--max_body_bytes", type=int, default=8 * 2**20, help="request body limit")
    p.add_argument(
        "--graceful_timeout",
        type=float,
        default=30.0,
        help="on SIGTERM, wait this long for requests in flight",
    )
    p.add_argument("--trust_remote_code", action="store_true")
    p.add_argument("--log_level", default="info", choices=["debug", "info", "warning", "error"])
    return p  # fmt: skip


def _check(args) -> None:
    for name in ("max_batch_tokens", "max_batch_pairs", "max_queue_pairs", "max_texts"):
        if getattr(args, name) < 1:
            raise InputError(None, f"--{name} must be >= 1")
    if args.max_wait_ms < 0:
        raise InputError(None, "--max_wait_ms must be >= 0")
    if args.max_len is not None and args.max_len < 8:
        raise InputError(None, "--max_len must be >= 8")
    if not 0 <= args.port < 65536:
        raise InputError(None, "--port must be in 0..65535")


@cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check(args)
    setup_logging(getattr(logging, args.log_level.upper()))
    try:
        import uvicorn

        from cross_encoder.serve.app import Limits, Server, build_app
    except ImportError as e:
        raise InputError(None, f"serving needs {e.name}: {INSTALL_HINT}") from None
    from cross_encoder.serve.engine import Batcher, Scorer

    try:
        scorer = Scorer(
            args.model,
            precision=args.precision,
            backend=args.backend,
            max_len=args.max_len,
            device=args.device,
            threads=args.threads,
            trust_remote_code=args.trust_remote_code,
            quantize=args.quantize,
            quantization_file=args.quantization_file,
        )
    except ImportError as e:
        raise InputError(None, str(e)) from None
    except InputError:
        raise
    except ValueError as e:
        raise InputError(args.model, str(e).splitlines()[0]) from None
    batcher = Batcher(
        scorer.score,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_pairs=args.max_batch_pairs,
        max_wait_ms=args.max_wait_ms,
        max_queue_pairs=args.max_queue_pairs,
        workers=scorer.workers,
    )
    if args.max_texts > args.max_queue_pairs:  # a bigger request could never be admitted
        logger.info("--max_texts lowered to --max_queue_pairs (%d)", args.max_queue_pairs)
        args.max_texts = args.max_queue_pairs
    limits = Limits(max_texts=args.max_texts, max_body_bytes=args.max_body_bytes)
    app = build_app(Server(scorer, batcher, limits, {}))
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
        access_log=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully, under
    # the handler that was there before it: make that a no-op, so that SIGTERM exits 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    server.run()
    if not server.started:  # e.g. the port is taken (uvicorn logged why)
        print(f"error: could not listen on {args.host}:{args.port}", file=sys.stderr)
        return 2
    logger.info("stopped")
    return 0
