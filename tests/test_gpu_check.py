"""``benchmarks/gpu_check.sh`` in its CPU dry mode: the one script a GPU session runs parses
and runs end to end -- a DebertaV2 cross-encoder trained through torchrun with 2 processes
under DeepSpeed ZeRO-2 and under plain DDP, sharded predict with the token budget, and the
report with MFU from FLOPs per pair."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("deepspeed")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_mode_runs_end_to_end(tmp_path):
    env = dict(os.environ)
    env.update(GPU_CHECK_DRY="1", WORK=str(tmp_path), PYTHON=sys.executable)
    r = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh")],
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert r.stdout.rstrip().endswith("== ok"), out[-2000:]
    for line in ("train ZeRO-2: ", "train DDP: ", "predict: ", "ZeRO-2 / DDP training"):
        assert line in out, out[-2000:]
    assert "model: deberta-v2, 2 x 32" in out
    # both trainings and predict ran 2 ranks; ZeRO-2 partitioned the optimizer
    for mode, deepspeed in (("zero2", True), ("ddp", False)):
        trained = json.loads((tmp_path / mode / "training_summary.json").read_text())
        assert '"deepspeed": ' + json.dumps(deepspeed) in json.dumps(trained)
        assert '"processes": 2' in json.dumps(trained)
    predict_log = (tmp_path / "predict.log").read_text()
    assert "predict (rank 0)" in predict_log and "predict (rank 1)" in predict_log
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["nproc"] == 2
    for key in ("train ZeRO-2", "train DDP", "predict"):
        assert summary[key]["pairs_per_s"] > 0
        assert summary[key]["tflops_per_process"] > 0
        assert summary[key]["mfu"] is None  # no GPU peak on a CPU
