"""The serving engine: the model, loaded and run as ``cross_encoder.run --do_predict`` runs it,
and a dynamic batcher that pools the pairs of concurrent requests.

* :class:`Scorer` loads a model folder with :mod:`cross_encoder.modeling`, resolves
  ``--precision`` with :func:`cross_encoder.hardware.resolve` (bf16 weights and a float32 score
  head on an AMX CPU, :func:`~cross_encoder.reranking.predict.cast_for_inference`; autocast on a
  GPU; or the OpenVINO backend, :mod:`cross_encoder.reranking.openvino`; ``backend="auto"``,
  the CLI's default: both built on a CPU with the extra, timed, the faster kept) and lays pairs
  out with :class:`~cross_encoder.training.dataset.PairTemplate`, so that a pair gets the score
  predict gives it. Text is tokenized as ``cross_encoder.preprocess`` does (the fast tokenizer, no
  special tokens); the template adds them and truncates.
* :class:`Batcher` queues requests' pairs (bounded: :class:`QueueFull` past ``max_queue_pairs``),
  waits at most ``max_wait_ms`` for more after the first arrives, takes up to a round's worth of
  tokens in arrival order, sorts them by length into token-budget batches
  (:func:`~cross_encoder.reranking.predict.make_batches`) and runs them off the event loop on
  ``workers`` threads: one for torch (a batch uses every core), one per stream for OpenVINO,
  which is compiled with the THROUGHPUT hint (on a 2-core CPU: 2 streams of 1 thread), so that
  a batch is in flight on each stream (:attr:`Scorer.workers`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cross_encoder import hardware, modeling
from cross_encoder.modeling.pairs import PairTemplate
from cross_encoder.reranking.predict import cast_for_inference, inference_view, make_batches
from cross_encoder.training.arguments import ModelArguments

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "openvino")
DIRECTIONS = ("Right", "Left")


class InputTooLong(ValueError):
    """A pair longer than the model takes, with truncation off (HTTP 413, as TEI)."""

    def __init__(self, index: int, n_tokens: int, max_len: int):
        super().__init__(index, n_tokens, max_len)
        self.index, self.n_tokens, self.max_len = index, n_tokens, max_len


class QueueFull(RuntimeError):
    """The batcher holds ``max_queue_pairs`` already (HTTP 429)."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def default_max_len(tokenizer, config) -> int:
    """The model's max pair length: ``model_max_length`` saved with the tokenizer (this
    package saves the max_len it trained with), capped by the position embeddings."""
    limit = getattr(config, "max_position_embeddings", None) or 512
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # positions start after the padding index
    saved = getattr(tokenizer, "model_max_length", None)
    if isinstance(saved, int) and 0 < saved < 1_000_000:
        return min(saved, limit)
    return min(512, limit)


class Scorer:
    """A model folder ready to score pairs: ``scorer.score(pairs) -> float32 logits``."""

    def __init__(
        self,
        model_dir: str,
        precision: str = "auto",
        backend: str = "torch",
        max_len: int | None = None,
        device: str | None = None,
        threads: int | None = None,
        trust_remote_code: bool = False,
        quantize: str = "none",
        quantization_file: str | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
        if threads:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
        self.backend = backend
        self.tokenizer = modeling.load_tokenizer(model_dir, trust_remote_code)
        model = modeling.load_model(
            ModelArguments(model_name_or_path=model_dir, trust_remote_code=trust_remote_code)
        )
        model.eval()
        self.max_len = max_len or default_max_len(self.tokenizer, model.config)
        self.template = PairTemplate(self.tokenizer, self.max_len)
        if device is None:
            device = "cuda" if torch.cuda.is_available() and backend != "openvino" else "cpu"
        self.device = torch.device(device)
        self.precision = hardware.resolve(precision, self.device)
        self.precision_reason = _reason(precision, self.precision, self.device)
        self.autocast_dtype = None
        self._ov = None
        self.backend_reason = f"--backend {backend}"
        self.backend_speed: dict | None = None
        build = self._auto_backends() if backend == "auto" else (backend,)
        self.backend = build[0]  # the one kept (auto: decided below, once both are built)
        if "openvino" in build:
            from cross_encoder.reranking import openvino as ov_backend

            if self.device.type != "cpu":
                raise ValueError("--backend openvino runs on the CPU")
            self._ov = ov_backend.compile_model(
                model, self.template, precision=self.precision, hint="THROUGHPUT"
            )
            self.dtype_name = f"OpenVINO {self._ov.precision}, fp32 score head"
        if "torch" in build:
            model.to(self.device)
            if self.device.type == "cuda" and self.precision in ("bf16", "fp16"):
                self.autocast_dtype = hardware.torch_dtype(self.precision)
                self._torch_dtype_name = f"{self.precision} autocast, fp32 score head"
            elif self.device.type == "cpu" and self.precision == "bf16":
                cast_for_inference(model, torch.bfloat16)
                self._torch_dtype_name = "bf16 weights, fp32 score head"
            else:
                self._torch_dtype_name = "fp32"
            if self._ov is None:
                self.dtype_name = self._torch_dtype_name
            self._head = inference_view(model)
            self._head.__enter__()  # for the scorer's lifetime: left when it is collected or
            # at exit, before the interpreter tears down the modules the restore needs (left to
            # the generator's own finalizer, it printed a TypeError at every server shutdown)
            weakref.finalize(self, self._head.__exit__, None, None, None)
        self.model = model
        if len(build) > 1:
            self._choose_backend()
        self.model_id = _model_id(model_dir, model)
        self.int8 = self._choose_int8(quantize, quantization_file, threads)
        if self.int8.use:
            from cross_encoder.reranking.quantize import load_int8

            self._ov = load_int8(self.int8.int8_dir, self.precision, threads, hint="THROUGHPUT")
            self.backend = "openvino"
            self.dtype_name = (
                f"int8 (NNCF static, OpenVINO; other layers {self._ov.precision}), fp32 score head"
            )
            self.precision_reason = f"{self.int8.reason}; {self.precision_reason}"
            self.precision = "int8"
            self.model = None  # the full-precision model is not used any more
        # batches in flight at once: one per OpenVINO stream; torch runs one at a time
        self.workers = self._ov.streams if self._ov is not None else 1
        logger.info(
            "serving %s: max_len %d, %s backend (%s), %s (%s), %d batch(es) in flight",
            self.model_id,
            self.max_len,
            self.backend,
            self.backend_reason,
            self.dtype_name,
            self.precision_reason,
            self.workers,
        )

    def _auto_backends(self) -> tuple[str, ...]:
        """The backends ``--backend auto`` builds: torch alone where OpenVINO cannot run (a
        GPU, or the extra is not installed), else both, and :meth:`_choose_backend` keeps the
        faster, as rerank's ``quantize: auto`` picks its full-precision backend."""
        from cross_encoder.reranking import openvino as ov_backend

        if self.device.type != "cpu":
            self.backend_reason = f"backend auto -> torch: the device is {self.device}"
            return ("torch",)
        if not ov_backend.available():
            self.backend_reason = (
                f"backend auto -> torch: OpenVINO is not installed ({ov_backend.INSTALL_HINT})"
            )
            return ("torch",)
        return ("openvino", "torch")

    def _choose_backend(self) -> None:
        """Time torch and OpenVINO as the server runs them -- a batch per OpenVINO stream in
        flight at once, against the same batches one after another on torch (every thread) --
        on :func:`~cross_encoder.serve.int8.probe_pairs`, and keep the faster."""
        from cross_encoder.serve import int8

        vocab = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
        batch = self.template.pad(int8.probe_pairs(self.template, vocab))
        ov, n = self._ov, max(1, self._ov.streams)

        def run_ov(b):
            for pending in [ov.submit(b) for _ in range(n)]:
                pending.result()

        def run_torch(b):
            for _ in range(n):
                self._torch_forward(b)

        speed = int8.time_paths(run_ov, run_torch, batch, names=("openvino", "torch"), batches=n)
        ratio = speed.pop("speedup")  # torch time / OpenVINO time
        fast = ratio > 1.0
        self.backend = "openvino" if fast else "torch"
        self.backend_reason = (
            f"backend auto -> {self.backend}: OpenVINO {ov.precision} ran {ratio:.2f}x torch "
            f"{self.precision} on {n} x {len(batch['input_ids'])} probe pairs at start-up"
        )
        self.backend_speed = {
            "openvino_pairs_per_s": speed["openvino_pairs_per_s"],
            "torch_pairs_per_s": speed["torch_pairs_per_s"],
            "openvino_vs_torch": ratio,
        }
        if fast:
            self.dtype_name = f"OpenVINO {ov.precision}, fp32 score head"
        else:
            self._ov = None
            self.dtype_name = self._torch_dtype_name

    def _choose_int8(self, mode: str, quantization_file: str | None, threads: int | None):
        from cross_encoder.serve import int8

        if mode not in int8.MODES:
            raise ValueError(f"quantize must be one of {', '.join(int8.MODES)}")
        if mode != "none" and self.device.type != "cpu":
            return int8.Int8Choice(mode, False, f"int8 is a CPU path (device {self.device})")
        full_path = f"{self.backend} {self.precision}"

        def probe(int8_dir):
            from cross_encoder.reranking.quantize import load_int8

            # one batch per path, timed as each runs it: on one stream against the full-precision
            # OpenVINO model (THROUGHPUT), on every thread against torch
            hint = "THROUGHPUT" if self._ov is not None else "LATENCY"
            scorer = load_int8(int8_dir, self.precision, threads, hint=hint)
            vocab = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
            batch = self.template.pad(int8.probe_pairs(self.template, vocab))
            return int8.time_paths(scorer, self._forward, batch)

        choice = int8.choose(self.model_dir, mode, quantization_file, full_path, probe)
        logger.info(
            "quantize %s -> %s: %s", mode, "int8" if choice.use else "full precision", choice.reason
        )
        return choice

    # -- tokenization and pair layout ------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids without special tokens, as ``cross_encoder.preprocess`` makes them."""
        if not texts:
            return []
        enc = self.tokenizer(
            list(texts),
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return enc["input_ids"]

    def build_pairs(
        self,
        query: str,
        texts: Sequence[str],
        truncate: bool,
        direction: str = "Right",
        max_tokens_per_text: int | None = None,
    ) -> list[tuple[list[int], list[int]]]:
        """The model inputs of ``(query, text)`` pairs. Without ``truncate`` a pair longer
        than ``max_len`` raises :class:`InputTooLong`; with it, :class:`PairTemplate` cuts the
        passage first (the query only when it alone leaves no room), from the end
        (``Right``) or, with ``Left``, from the start."""
        ids = self.tokenize([query, *texts])
        q, passages = ids[0], ids[1:]
        t = self.template
        if max_tokens_per_text is not None:
            passages = [_cut(p, max_tokens_per_text, direction) for p in passages]
        if not truncate:
            for i, p in enumerate(passages):
                n = t.n_special + len(q) + len(p)
                if n > t.max_len:
                    raise InputTooLong(i, n, t.max_len)
        elif direction == "Left":  # what build() keeps, taken from the other end
            q = _cut(q, t.max_query_len, "Left")
            room = t.max_len - t.n_special - len(q)
            passages = [_cut(p, room, "Left") for p in passages]
        return [t.build(q, p) for p in passages]

    # -- the forward pass -----------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[list[int], list[int]]]) -> np.ndarray:
        """Raw scores (logits, float32) of one batch of built pairs."""
        return self._forward(self.template.pad(pairs))

    def _forward(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        if self._ov is not None:
            return np.asarray(self._ov(batch), dtype=np.float32)
        return self._torch_forward(batch)

    @torch.inference_mode()
    def _torch_forward(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        n = len(batch["input_ids"])
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(
            device_type=self.device.type,
            dtype=self.autocast_dtype,
            enabled=self.autocast_dtype is not None,
        ):
            logits = self.model(**batch).logits
        return logits.float().reshape(n, -1)[:, 0].cpu().numpy()

    def info(self) -> dict:
        return {
            "model_id": self.model_id,
            "model_dir": str(self.model_dir),
            "max_len": self.max_len,
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            **({"backend_speed": self.backend_speed} if self.backend_speed else {}),
            "device": str(self.device),
            "precision": self.precision,
            "dtype": self.dtype_name,
            "precision_reason": self.precision_reason,
            "cpu": hardware.describe_cpu(),
            "threads": torch.get_num_threads(),
            "quantize": self.int8.info(),
        }


def _cut(ids: list[int], n: int, direction: str) -> list[int]:
    if len(ids) <= n:
        return ids
    return ids[len(ids) - n :] if direction == "Left" else ids[:n]


def _reason(requested: str, chosen: str, device: torch.device) -> str:
    if device.type == "cuda":
        return f"precision {requested} on a CUDA GPU -> {chosen}"
    if requested == "auto":
        return hardware.choose_cpu_precision().describe()
    return f"precision {requested} as asked"


def _model_id(model_dir: str, model) -> str:
    name = getattr(model.config, "_name_or_path", "") or ""
    path = Path(modeling.resolve_model(model_dir))
    return path.name if path.is_dir() else (name or str(model_dir))


# -- dynamic batching ------------------------------------------------------------------------
@dataclass
class _Job:
    pairs: list[tuple[list[int], list[int]]]
    future: asyncio.Future
    scores: np.ndarray = field(init=False)
    next: int = 0  # first pair not yet taken into a round
    left: int = field(init=False)  # pairs not yet scored

    def __post_init__(self):
        self.scores = np.empty(len(self.pairs), dtype=np.float32)
        self.left = len(self.pairs)


class Batcher:
    """Pools the pairs of concurrent requests into length-sorted, token-budget batches.

    ``await batcher.submit(pairs)`` returns their raw scores in order. At most
    ``max_queue_pairs`` pairs are admitted (queued or being scored); past that
    :class:`QueueFull` says how many seconds a retry should wait. ``workers`` batches are
    scored at once, each on a thread of its own (``score`` must then be thread-safe: an
    OpenVINO scorer with a stream per thread).
    """

    def __init__(
        self,
        score: Callable[[Sequence], np.ndarray],
        max_batch_tokens: int = 8192,
        max_batch_pairs: int = 256,
        max_wait_ms: float = 5.0,
        max_queue_pairs: int = 8192,
        round_batches: int = 4,
        on_batch: Callable[[int, int, float], None] | None = None,
        workers: int = 1,
    ):
        self._score = score
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_pairs = max_batch_pairs
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_pairs = max_queue_pairs
        self.round_tokens = max_batch_tokens * round_batches
        self.on_batch = on_batch
        self.workers = max(1, int(workers))
        self.admitted = 0  # pairs queued or being scored
        self._jobs: collections.deque[_Job] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._free: asyncio.Semaphore | None = None  # workers without a batch
        self._busy = 0  # batches in flight
        self._in_flight: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.workers, thread_name_prefix="model"
        )
        self._pairs_per_s = 0.0  # an exponential average, for Retry-After

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._free = asyncio.Semaphore(self.workers)
        self._task = asyncio.create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """After the server drained its requests: end the worker, free the threads."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:  # batches of requests that went away
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._executor.shutdown(wait=True)

    def retry_after(self, extra: int = 0) -> int:
        rate = self._pairs_per_s or 100.0
        return max(1, min(60, math.ceil((self.admitted + extra) / rate)))

    async def submit(self, pairs: list[tuple[list[int], list[int]]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if self.admitted + len(pairs) > self.max_queue_pairs:
            raise QueueFull(self.retry_after(len(pairs)))
        job = _Job(pairs, asyncio.get_running_loop().create_future())
        self.admitted += len(pairs)
        self._jobs.append(job)
        self._wake.set()
        try:
            return await job.future
        finally:
            self.admitted -= len(pairs)
            if job.left and job in self._jobs:  # the client went away: drop what is left
                self._jobs.remove(job)

    def _take_round(self) -> list[tuple[_Job, int]]:
        """Pairs in arrival order until a round's token budget: ``(job, index)``."""
        taken: list[tuple[_Job, int]] = []
        tokens = 0
        while self._jobs and tokens < self.round_tokens:
            job = self._jobs[0]
            while job.next < len(job.pairs) and tokens < self.round_tokens:
                taken.append((job, job.next))
                tokens += len(job.pairs[job.next][0])
                job.next += 1
            if job.next == len(job.pairs):
                self._jobs.popleft()
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
            # a worker is free: wait up to max_wait for more requests (unless a round is full
            # already), then form a round and hand its batches to the workers as they free up
            await self._free.acquire()
            deadline = loop.time() + self.max_wait
            while self._queued_tokens() < self.round_tokens and loop.time() < deadline:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), deadline - loop.time())
                except asyncio.TimeoutError:
                    break
            taken = self._take_round()
            lengths = [len(job.pairs[i][0]) for job, i in taken]
            held = True  # the slot acquired above
            for b in self._batches(lengths):
                items = [taken[k] for k in b if not taken[k][0].future.done()]
                if not items:
                    continue
                if not held:
                    await self._free.acquire()
                held = False
                width = max(lengths[k] for k in b)
                task = asyncio.create_task(self._score_batch(items, width))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if held:
                self._free.release()

    def _batches(self, lengths: list[int]) -> list[np.ndarray]:
        """The round's length-sorted batches. With several workers, the smallest token budget
        that gives no more batches than the next multiple of ``workers``, so that the streams
        finish together: one request of 100 pairs (a light load) is two batches of about half
        its tokens each, not 8192 tokens and the rest."""
        batches = make_batches(lengths, self.max_batch_tokens, self.max_batch_pairs)
        if self.workers == 1 or not lengths:
            return batches
        target = -(-len(batches) // self.workers) * self.workers
        hi = self.max_batch_tokens
        lo = min(max(lengths), hi)  # the smallest budget giving <= target batches
        while lo < hi:
            mid = (lo + hi) // 2
            if len(make_batches(lengths, mid, self.max_batch_pairs)) <= target:
                hi = mid
            else:
                lo = mid + 1
        return make_batches(lengths, lo, self.max_batch_pairs)

    async def _score_batch(self, items: list[tuple[_Job, int]], width: int) -> None:
        """Score one batch on a worker thread (holding a slot of ``_free``), then hand each
        request its scores; a request whose pairs are all scored is answered."""
        loop = asyncio.get_running_loop()
        self._busy += 1
        in_flight = self._busy
        start = time.perf_counter()
        try:
            scores = await loop.run_in_executor(
                self._executor, self._score, [job.pairs[i] for job, i in items]
            )
        except Exception as e:  # the model failed: those requests fail, not the server
            logger.exception("scoring a batch of %d pairs failed", len(items))
            for job, _ in items:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        finally:
            self._busy -= 1
            self._free.release()
        elapsed = time.perf_counter() - start
        rate = len(items) * in_flight / max(elapsed, 1e-6)  # all workers' pairs/s
        ema = self._pairs_per_s
        self._pairs_per_s = rate if not ema else 0.8 * ema + 0.2 * rate
        if self.on_batch is not None:
            self.on_batch(len(items), width * len(items), elapsed)
        for (job, i), s in zip(items, scores, strict=True):
            job.scores[i] = s
            job.left -= 1
            if job.left == 0 and not job.future.done():
                job.future.set_result(job.scores)

    def _queued_tokens(self) -> int:
        total = 0
        for job in self._jobs:
            for ids, _ in job.pairs[job.next :]:
                total += len(ids)
                if total >= self.round_tokens:
                    return total
        return total

    @property
    def queued_pairs(self) -> int:
        return sum(len(job.pairs) - job.next for job in self._jobs)
