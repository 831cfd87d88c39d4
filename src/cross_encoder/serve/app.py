"""The HTTP API (Starlette): Text Embeddings Inference's ``POST /rerank``, Cohere's
``POST /v2/rerank`` and ``/v1/rerank``, and ``GET /health``, ``/info``, ``/metrics``.

Bad input is a 4xx with a JSON body naming the field, never a 500: ``{"error", "error_type",
"message", "field"}`` (TEI's two keys and Cohere's ``message``). 413 for too many texts, a body
over ``max_body_bytes`` or, with ``truncate: false``, a pair over the model's max length (as
TEI); 415 for a body that is not JSON by its content type; 400 for bytes that are not UTF-8
JSON; 422 for a field of the wrong type or value; 429 with ``Retry-After`` when the batcher's
queue is full. Unknown fields are ignored (Cohere's clients send some).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cross_encoder.serve.engine import DIRECTIONS, Batcher, InputTooLong, QueueFull, Scorer

logger = logging.getLogger(__name__)


@dataclass
class Limits:
    max_texts: int = 1000
    max_body_bytes: int = 8 * 2**20


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, kind: str = ""):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.kind = kind or {
            400: "Validation",
            413: "Validation",
            415: "Validation",
            422: "Validation",
            429: "Overloaded",
        }.get(status, "Backend")
        self.headers: dict[str, str] = {}


def _error(e: ApiError) -> JSONResponse:
    body = {"error": e.message, "error_type": e.kind, "message": e.message}
    if e.field is not None:
        body["field"] = e.field
    return JSONResponse(body, status_code=e.status, headers=e.headers)


class Metrics:
    """Prometheus metrics of one app (its own registry)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rerank_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
            registry=r,
        )  # fmt: skip
        self.pairs = Counter("rerank_pairs_scored", "query-text pairs scored", registry=r)
        self.latency = Histogram(
            "rerank_request_duration_seconds", "request latency", ["endpoint"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )  # fmt: skip
        self.batch_pairs = Histogram(
            "rerank_batch_pairs", "pairs per model batch", registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )  # fmt: skip
        self.batch_tokens = Histogram(
            "rerank_batch_padded_tokens", "padded tokens per model batch", registry=r,
            buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "rerank_batch_duration_seconds", "model time per batch", registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )  # fmt: skip
        self.queue = Gauge("rerank_queue_pairs", "pairs admitted, not yet scored", registry=r)

    def on_batch(self, n_pairs: int, padded_tokens: int, seconds: float) -> None:
        self.pairs.inc(n_pairs)
        self.batch_pairs.observe(n_pairs)
        self.batch_tokens.observe(padded_tokens)
        self.batch_seconds.observe(seconds)


# -- request parsing ----------------------------------------------------------------------------
async def read_json(request: Request, limits: Limits):
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise ApiError(
            415, f"Content-Type must be application/json, not {ctype or 'missing'!r}", "body"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ApiError(413, f"body of {declared} bytes over {limits.max_body_bytes}", "body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise ApiError(413, f"body over {limits.max_body_bytes} bytes", "body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"body is not valid UTF-8 (byte {e.start})", "body") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", "body"
        ) from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deep", "body") from None


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise ApiError(422, f"the body must be a JSON object, not {_kind(body)}", "body")
    return body


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), "null" if v is None else "a number"
    )


def _query(body: dict) -> str:
    q = body.get("query")
    if q is None:
        raise ApiError(422, "missing field 'query'", "query")
    if not isinstance(q, str):
        raise ApiError(422, f"'query' must be a string, not {_kind(q)}", "query")
    if not q.strip():
        raise ApiError(422, "'query' is empty", "query")
    return q


def _texts(body: dict, name: str, limits: Limits, objects: bool = False) -> list[str]:
    texts = body.get(name)
    if texts is None:
        raise ApiError(422, f"missing field '{name}'", name)
    if not isinstance(texts, list):
        raise ApiError(422, f"'{name}' must be a list of strings, not {_kind(texts)}", name)
    if not texts:
        raise ApiError(422, f"'{name}' is empty", name)
    if len(texts) > limits.max_texts:
        raise ApiError(
            413, f"'{name}' has {len(texts)} items; at most {limits.max_texts} per request", name
        )
    out = []
    for i, t in enumerate(texts):
        if objects and isinstance(t, dict):
            t = t.get("text")
            if not isinstance(t, str):
                raise ApiError(
                    422, f"'{name}[{i}]' must be a string or an object with a string 'text'",
                    f"{name}[{i}].text",
                )  # fmt: skip
        elif not isinstance(t, str):
            what = "a string or an object with a 'text'" if objects else "a string"
            raise ApiError(422, f"'{name}[{i}]' must be {what}, not {_kind(t)}", f"{name}[{i}]")
        out.append(t)
    return out


def _bool(body: dict, name: str, default: bool) -> bool:
    v = body.get(name, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise ApiError(422, f"'{name}' must be true or false, not {_kind(v)}", name)
    return v


def _int(body: dict, name: str, default: int | None, minimum: int = 1) -> int | None:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise ApiError(422, f"'{name}' must be an integer, not {_kind(v)}", name)
    if v < minimum:
        raise ApiError(422, f"'{name}' must be >= {minimum}, not {v}", name)
    return v


# -- the app ------------------------------------------------------------------------------------
class Server:
    """What the routes share: the scorer, the batcher, limits and metrics."""

    def __init__(self, scorer: Scorer, batcher: Batcher, limits: Limits, settings: dict):
        self.scorer, self.batcher, self.limits, self.settings = scorer, batcher, limits, settings
        self.metrics = Metrics()
        batcher.on_batch = self.metrics.on_batch

    async def scores(self, query, texts, truncate, direction, max_tokens_per_text=None):
        field = "texts" if max_tokens_per_text is None else "documents"
        try:
            pairs = await anyio.to_thread.run_sync(
                self.scorer.build_pairs, query, texts, truncate, direction, max_tokens_per_text
            )
        except InputTooLong as e:
            raise ApiError(
                413,
                f"'{field}[{e.index}]' with the query is {e.n_tokens} tokens; the model takes at "
                f'most {e.max_len} (send "truncate": true to cut it)',
                f"{field}[{e.index}]",
            ) from None
        try:
            raw = await self.batcher.submit(pairs)
        except QueueFull as e:
            err = ApiError(
                429, f"the queue is full ({self.batcher.max_queue_pairs} pairs); retry later"
            )
            err.headers["Retry-After"] = str(e.retry_after)
            raise err from None
        return raw

    # TEI: POST /rerank
    async def rerank_tei(self, request: Request) -> Response:
        body = _object(await read_json(request, self.limits))
        query = _query(body)
        texts = _texts(body, "texts", self.limits)
        raw_scores = _bool(body, "raw_scores", False)
        return_text = _bool(body, "return_text", False)
        truncate = _bool(body, "truncate", False)
        direction = body.get("truncation_direction", "Right")
        if direction not in DIRECTIONS:
            raise ApiError(
                422, f"'truncation_direction' must be 'Right' or 'Left', not {direction!r}",
                "truncation_direction",
            )  # fmt: skip
        raw = await self.scores(query, texts, truncate, direction)
        scores = raw if raw_scores else _sigmoid(raw)
        out = []
        for i in _order(raw):
            item = {"index": int(i), "score": float(scores[i])}
            if return_text:
                item["text"] = texts[i]
            out.append(item)
        return JSONResponse(out)

    # Cohere: POST /v1/rerank and /v2/rerank
    async def rerank_cohere(self, request: Request) -> Response:
        version = "1" if request.url.path.startswith("/v1/") else "2"
        body = _object(await read_json(request, self.limits))
        query = _query(body)
        docs = _texts(body, "documents", self.limits, objects=True)
        top_n = _int(body, "top_n", None)
        return_documents = _bool(body, "return_documents", False)
        max_tokens = _int(body, "max_tokens_per_doc", 4096)
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise ApiError(422, f"'model' must be a string, not {_kind(model)}", "model")
        # Cohere cuts long documents instead of failing (to max_tokens_per_doc, then to fit).
        raw = await self.scores(query, docs, True, "Right", max_tokens)
        scores = _sigmoid(raw)
        results = []
        for i in _order(raw)[:top_n]:
            item = {"index": int(i), "relevance_score": float(scores[i])}
            if return_documents:
                item["document"] = {"text": docs[i]}
            results.append(item)
        return JSONResponse(
            {
                "id": str(uuid.uuid4()),
                "results": results,
                "meta": {
                    "api_version": {"version": version},
                    "billed_units": {"search_units": 1},
                },
            }
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def info(self, request: Request) -> Response:
        s = self.scorer.info()
        s.update(
            {
                "model_type": {"reranker": {"id2label": {"0": "score"}}},
                "model_dtype": s["precision"],
                "max_input_length": s["max_len"],
                "max_client_batch_size": self.limits.max_texts,
                "max_body_bytes": self.limits.max_body_bytes,
                "max_batch_tokens": self.batcher.max_batch_tokens,
                "max_batch_pairs": self.batcher.max_batch_pairs,
                "max_wait_ms": self.batcher.max_wait * 1000,
                "max_queue_pairs": self.batcher.max_queue_pairs,
                "batches_in_flight": self.batcher.workers,
                **self.settings,
            }
        )
        return JSONResponse(s)

    async def metrics_text(self, request: Request) -> Response:
        self.metrics.queue.set(self.batcher.admitted)
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _order(raw: np.ndarray) -> np.ndarray:
    """Best first; ties keep input order."""
    return np.argsort(-raw, kind="stable")


def _endpoint(
    server: Server, name: str, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        start = time.perf_counter()
        try:
            response = await handler(request)
        except ApiError as e:
            response = _error(e)
        except ClientDisconnect:
            response = Response(status_code=499)
        except Exception:
            logger.exception("%s failed", name)
            response = _error(ApiError(500, "internal error while scoring; see the server log"))
        m = server.metrics
        m.requests.labels(name, str(response.status_code)).inc()
        m.latency.labels(name).observe(time.perf_counter() - start)
        return response

    return wrapped


def build_app(server: Server) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        await server.batcher.start()
        try:
            yield
        finally:
            await server.batcher.stop()

    async def not_found(request: Request, exc) -> Response:
        status = getattr(exc, "status_code", 404)
        msg = "method not allowed" if status == 405 else f"no route {request.url.path}"
        return _error(ApiError(status, msg, kind="Validation"))

    def route(path, handler, method):
        return Route(path, _endpoint(server, path, handler), methods=[method])

    routes = [
        route("/rerank", server.rerank_tei, "POST"),
        route("/v1/rerank", server.rerank_cohere, "POST"),
        route("/v2/rerank", server.rerank_cohere, "POST"),
        route("/health", server.health, "GET"),
        route("/info", server.info, "GET"),
        Route("/metrics", server.metrics_text, methods=["GET"]),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found}
    )
