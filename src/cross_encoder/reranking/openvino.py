"""Rerank with OpenVINO on a CPU (``--backend openvino``): the model's encoder converted with
``openvino.convert_model`` (dynamic batch and sequence dimensions) and compiled for the CPU,
fed the same length-sorted batches as :func:`cross_encoder.reranking.predict.score_pairs`.

OpenVINO picks its own inference precision: bf16 on a CPU with AMX (or AVX512_BF16), f32
elsewhere (``precision`` overrides it; :attr:`OpenVINOScorer.precision` says what it used).
As in the torch path, the score head (the classifier's last linear layer) stays out of the
converted graph and runs in float32 on the encoder's output, so that scores keep full
resolution instead of bf16's 3 significant digits.

Optional: ``pip install 'cross-encoder-rerank[openvino]'``. OpenVINO's converter reports usage
to Intel unless the user opted out; this module makes it use its built-in no-op stub instead
(nothing leaves the machine).
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.cls_only import first_token_only
from cross_encoder.modeling.pairs import PairBuilder, PairTemplate
from cross_encoder.reranking.predict import _score_head

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'cross-encoder-rerank[openvino]'"
# precision names of this package -> OpenVINO's INFERENCE_PRECISION_HINT
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def available() -> bool:
    """Whether OpenVINO is installed (the ``openvino`` extra)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def import_openvino():
    """``openvino``, with its converter's telemetry replaced by the no-op stub it ships
    (it falls back to that stub when ``openvino_telemetry`` cannot be imported)."""
    if "openvino.tools.ovc" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    try:
        import openvino
    except ImportError as e:
        raise ImportError(f"the OpenVINO backend needs OpenVINO: {INSTALL_HINT}") from e
    return openvino


class _Encoder(torch.nn.Module):
    """The model with its score head replaced by the identity: returns the head's input."""

    def __init__(self, model, names: Sequence[str]):
        super().__init__()
        self.model = model
        self.names = tuple(names)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.model(**kwargs).logits


def _replace_module(root: torch.nn.Module, target: torch.nn.Module, new: torch.nn.Module):
    for module in root.modules():
        for child_name, child in module.named_children():
            if child is target:
                setattr(module, child_name, new)
                return module, child_name
    raise ValueError("score head not found in the model")


class OpenVINOScorer:
    """A compiled encoder + the float32 score head: ``scorer(batch) -> float32 scores``."""

    def __init__(self, compiled, head: torch.nn.Linear | None, names: Sequence[str]):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self._local = threading.local()  # a request per calling thread: see __call__
        self._local.request = self.request
        self.names = tuple(names)
        self.head = head
        if head is not None:
            self.weight = head.weight.detach().float().cpu().numpy()[0]
            self.bias = 0.0 if head.bias is None else float(head.bias.detach().float()[0])
        self.queue = None
        if self.hint == "THROUGHPUT":  # batches in flight on OpenVINO's streams (submit)
            ov = import_openvino()
            n = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self.queue = ov.AsyncInferQueue(compiled, max(1, n))
            self.queue.set_callback(_store_output)

    @property
    def hint(self) -> str:
        """``LATENCY`` (one request at a time) or ``THROUGHPUT`` (see :func:`compile_converted`)."""
        return str(self.compiled.get_property("PERFORMANCE_HINT")).split(".")[-1].upper()

    @property
    def streams(self) -> int:
        value = self.compiled.get_property("NUM_STREAMS")
        return int(getattr(value, "to_integer", lambda: value)())

    @property
    def precision(self) -> str:
        """OpenVINO's inference precision (``bf16``, ``f32``, ...)."""
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        return hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)

    @property
    def threads(self) -> int:
        """Inference threads the compiled model uses."""
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    def __call__(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """Scores (float32) of one padded batch. Thread-safe: each calling thread has an infer
        request of its own, so that threads score batches at once, one per stream (a
        THROUGHPUT-compiled model; OpenVINO releases the GIL while it infers)."""
        inputs = {k: batch[k].numpy() for k in self.names}
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return self._scores(request.infer(inputs)[0])

    def _scores(self, out) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if self.head is None:  # the graph ends in the logits
            return out.reshape(len(out), -1)[:, 0].copy()
        out = out.reshape(len(out), -1)
        return out @ self.weight + np.float32(self.bias)

    def submit(self, batch: dict[str, torch.Tensor]) -> _Pending:
        """Start scoring ``batch`` on a free stream; ``.result()`` of the returned handle waits
        for it (a THROUGHPUT-compiled scorer; otherwise scored at once)."""
        pending = _Pending(self)
        if self.queue is None:
            pending.value = self(batch)
            return pending
        inputs = {k: batch[k].numpy() for k in self.names}
        self.queue.start_async(inputs, pending, share_inputs=False)
        return pending


class _Pending:
    """The scores of a batch :meth:`OpenVINOScorer.submit` started."""

    def __init__(self, scorer: OpenVINOScorer):
        self.scorer = scorer
        self.value: np.ndarray | None = None

    def result(self) -> np.ndarray:
        if self.value is None:
            self.scorer.queue.wait_all()
        return self.value


def _store_output(request, pending: _Pending) -> None:
    """AsyncInferQueue's callback: the finished request's scores into its handle (copied:
    the request's output buffer is reused by the next batch)."""
    pending.value = pending.scorer._scores(request.get_output_tensor(0).data.copy())


def convert_model(model, template: PairTemplate):
    """``(ov_model, head, names)``: ``model``'s encoder as an OpenVINO model (dynamic batch and
    sequence dimensions, the score head left out), the float32 score head it leaves out (None
    if the graph ends in the logits) and the input names."""
    ov = import_openvino()
    model = model.float().eval()
    names = ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if template.uses_token_types else []
    )
    # A two-pair example of different lengths: padding and masks take part in the trace.
    ids = [1] * 4
    example = template.pad([template.build(ids, ids), template.build(ids, ids[:2])])
    head = _score_head(model)
    swapped = None
    if head is not None:
        swapped = _replace_module(model, head, torch.nn.Identity())
    # The last layer for [CLS] only: the same scores, less work (modeling.cls_only).
    try:
        # OpenVINO's PyTorch frontend traces with torch.jit (deprecated in torch 2.13: a
        # warning per call), and the trace warns about shapes it takes as constants: none
        # that varies per batch (the example is padded: the attention mask is in the graph).
        with torch.no_grad(), warnings.catch_warnings(), first_token_only(model):
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", r".*torch\.jit\.trace", DeprecationWarning)
            ov_model = ov.convert_model(
                _Encoder(model, names),
                example_input={k: example[k] for k in names},
                input=[(k, ov.PartialShape([-1, -1]), ov.Type.i64) for k in names],
            )
    finally:
        if swapped is not None:
            setattr(swapped[0], swapped[1], head)
    return ov_model, head, names


def compile_converted(
    ov_model,
    head,
    names: Sequence[str],
    precision: str | None = None,
    threads: int | None = None,
    device: str = "CPU",
    hint: str = "LATENCY",
) -> OpenVINOScorer:
    """Compile an OpenVINO model of :func:`convert_model` (or its int8 version) for ``device``.

    ``hint``: ``LATENCY`` (one request uses every thread: a server's single batch) or
    ``THROUGHPUT`` (OpenVINO splits the threads into streams and :func:`score_pairs` keeps a
    batch in flight on each; reranking a file: on this 2-core AMX Xeon 2 streams of 1 thread
    scored SciFact-length int8 batches 6-12% faster than one request on 2 threads)."""
    ov = import_openvino()
    config = {
        "PERFORMANCE_HINT": hint,
        "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
    }
    if precision and precision != "auto":
        if precision not in PRECISION_HINTS:
            raise ValueError(f"precision must be auto or one of {', '.join(PRECISION_HINTS)}")
        config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[precision]
    compiled = ov.Core().compile_model(ov_model, device, config)
    scorer = OpenVINOScorer(compiled, head, names)
    logger.info(
        "OpenVINO %s on %s: inference precision %s, %d threads, %s (%d streams), score head "
        "in float32",
        ov.get_version(),
        device,
        scorer.precision,
        scorer.threads,
        scorer.hint.lower(),
        scorer.streams,
    )
    return scorer


def batch_scorer(scorer: OpenVINOScorer, builder: PairBuilder):
    """``score_batch`` for :func:`cross_encoder.reranking.predict.score_chunks`: scores, or
    handles that :func:`score_chunks` resolves at the end of each chunk (THROUGHPUT)."""
    if scorer.queue is not None:
        return lambda qrows, prows: scorer.submit(builder.pad(qrows, prows))
    return lambda qrows, prows: scorer(builder.pad(qrows, prows))


def compile_model(
    model,
    template: PairTemplate,
    precision: str | None = None,
    threads: int | None = None,
    device: str = "CPU",
    hint: str = "LATENCY",
) -> OpenVINOScorer:
    """Convert ``model`` (a float32 ``AutoModelForSequenceClassification``) and compile it.

    ``precision``: ``fp32``/``bf16``/``fp16`` (OpenVINO's ``INFERENCE_PRECISION_HINT``), or
    ``None``/``auto`` for OpenVINO's own choice. ``threads``: default torch's thread count.
    """
    ov_model, head, names = convert_model(model, template)
    return compile_converted(ov_model, head, names, precision, threads, device, hint)


def score_pairs(
    scorer: OpenVINOScorer,
    template: PairTemplate,
    queries: TokenizedCollection,
    corpus: TokenizedCollection,
    pairs: Sequence[tuple[str, str]],
    max_tokens: int = 16384,
    max_pairs: int = 0,
    progress: bool = True,
    chunk_pairs: int | None = None,
) -> np.ndarray:
    """Scores of ``pairs`` (``(qid, pid)``) in input order, as float32: the batches of
    :func:`cross_encoder.reranking.predict.score_pairs` (length-sorted under a token budget,
    chunk by chunk), one process."""
    from cross_encoder.reranking.predict import score_pair_list

    return score_pair_list(
        lambda builder: batch_scorer(scorer, builder),
        template,
        queries,
        corpus,
        pairs,
        max_tokens,
        max_pairs,
        chunk_pairs,
        progress,
        desc="predict (openvino)",
    )
