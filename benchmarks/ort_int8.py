"""ONNX Runtime static int8 (QDQ) of a cross-encoder, for ``bench_predict.py --systems ort_int8``:
the comparison issue 24 asks for where OpenVINO's int8 misses a target. Benchmark-only, not a
product path: ``pip install -e ".[bench-ort]"`` (onnxruntime + onnx, pinned), or a separate venv.

As the product's int8 (:mod:`cross_encoder.reranking.quantize`): the encoder is exported with
the score head left out (it runs in float32 on the encoder's output), dynamic batch and sequence
dimensions; ``onnxruntime.quantization.quantize_static`` in the QDQ format (activations uint8,
weights int8 per channel: ORT's x86 recommendation, U8S8) on the linear layers (MatMuls with a
constant weight; attention stays in float32), calibrated (min-max) on the same pairs, one pair
a batch; an ``InferenceSession`` at ``--threads`` intra-op threads, graph
optimizations on, fed the same length-sorted batches as the other systems.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def available() -> str | None:
    """None, or why the ORT system cannot run here."""
    import importlib.util

    missing = [m for m in ("onnxruntime", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return f"needs {' and '.join(missing)}: pip install -e '.[bench-ort]'"
    return None


class ORTScorer:
    """``scorer(batch) -> float32 scores``, as :class:`~cross_encoder.reranking.openvino.
    OpenVINOScorer`: the int8 session's encoder output through the float32 score head."""

    def __init__(self, session, head, names: Sequence[str]):
        self.session = session
        self.names = tuple(names)
        self.weight = None if head is None else head.weight.detach().float().numpy()[0]
        self.bias = 0.0 if head is None or head.bias is None else float(head.bias.detach()[0])

    def __call__(self, batch) -> np.ndarray:
        inputs = {k: batch[k].numpy().astype(np.int64) for k in self.names}
        out = np.asarray(self.session.run(None, inputs)[0], dtype=np.float32)
        out = out.reshape(len(out), -1)
        if self.weight is None:
            return out[:, 0].copy()
        return out @ self.weight + np.float32(self.bias)


def export(model, template, path: Path) -> tuple[object, list[str]]:
    """``(head, names)``: the encoder (score head swapped for the identity) exported to
    ``path`` with dynamic batch and sequence axes."""
    from cross_encoder.reranking.openvino import _Encoder, _replace_module
    from cross_encoder.reranking.predict import _score_head

    model = model.float().eval()
    names = ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if template.uses_token_types else []
    )
    ids = [1] * 4
    example = template.pad([template.build(ids, ids), template.build(ids, ids[:2])])
    head = _score_head(model)
    swapped = _replace_module(model, head, torch.nn.Identity()) if head is not None else None
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Encoder(model, names),
                tuple(example[k] for k in names),
                str(path),
                input_names=names,
                output_names=["hidden"],
                dynamic_axes={k: {0: "batch", 1: "seq"} for k in names} | {"hidden": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    finally:
        if swapped is not None:
            setattr(swapped[0], swapped[1], head)
    return head, names


def build(model, template, calibration: Sequence[dict], threads: int) -> ORTScorer:
    """Export, quantize statically (QDQ, calibrated on ``calibration``: padded one-pair
    batches as :meth:`PairTemplate.pad` makes them) and open a session."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    tmp = Path(tempfile.mkdtemp(prefix="ort_int8_"))
    fp32, pre, int8 = tmp / "model.onnx", tmp / "model.pre.onnx", tmp / "model.int8.onnx"
    head, names = export(model, template, fp32)
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(
                [{k: b[k].numpy().astype(np.int64) for k in names} for b in calibration]
            )

        def get_next(self):
            return next(self.items, None)

    quantize_static(
        str(pre),
        str(int8),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=["MatMul", "Gemm"],
        # the linear layers only: int8 attention (Q.K^T, A.V with two activation inputs)
        # scrambled the rankings (Spearman 0.4-0.7 vs fp32 in a first try)
        extra_options={"MatMulConstBOnly": True},
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    return ORTScorer(session, head, names)
