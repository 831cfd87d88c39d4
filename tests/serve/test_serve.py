"""The /rerank server: a real server process on 127.0.0.1 and real HTTP (httpx).

Unit tests drive the engine in process (pair layout and truncation, the batcher's bound); the
``slow`` tests start ``python -m cross_encoder.serve`` on a free port and check both contracts,
the scores ``cross_encoder.run --do_predict`` gives, 50 concurrent requests, a flood (429), every
bad input of issue 23 and SIGTERM with a request in flight."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

REPO = Path(__file__).resolve().parents[2]
WORDS = ["cat", "dog", "fox", "rabbit", "bird", "fish", "horse", "cow", "owl", "bee", "river"]


def _text(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, size=n))


# -- in process ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scorer(tiny_model_dir):
    from cross_encoder.serve.engine import Scorer

    return Scorer(str(tiny_model_dir), precision="fp32", max_len=32, threads=1)


def test_pairs_use_the_predict_template(scorer):
    from cross_encoder.serve.engine import InputTooLong

    t = scorer.template
    q, p = "cat dog fox", " ".join(WORDS * 3)  # 3 + 33 tokens
    qi, pi = scorer.tokenize([q, p])
    assert scorer.build_pairs(q, [p], truncate=True) == [t.build(qi, pi)]
    (ids, types), = scorer.build_pairs(q, [p], truncate=True, direction="Left")  # fmt: skip
    room = 32 - t.n_special - len(qi)
    assert ids == t.prefix + qi + t.middle + pi[-room:] + t.suffix
    assert len(ids) == len(types) == 32 and len(pi) == 33
    with pytest.raises(InputTooLong) as e:
        scorer.build_pairs(q, ["cat", p], truncate=False)
    assert (e.value.index, e.value.n_tokens, e.value.max_len) == (1, 3 + 3 + 33, 32)
    # Cohere's max_tokens_per_doc cuts the document before the pair is laid out
    (ids, _), = scorer.build_pairs(q, [p], truncate=True, max_tokens_per_text=2)  # fmt: skip
    assert ids == t.prefix + qi + t.middle + pi[:2] + t.suffix


def test_batcher_pools_requests_and_bounds_its_queue(scorer):
    from cross_encoder.serve.engine import Batcher, QueueFull

    rng = np.random.default_rng(0)
    requests = [
        scorer.build_pairs(
            _text(rng, 3), [_text(rng, int(n)) for n in rng.integers(1, 12, 7)], True
        )
        for _ in range(6)
    ]
    serial = [scorer.score(pairs) for pairs in requests]
    batches = []

    async def go():
        b = Batcher(scorer.score, max_batch_tokens=256, max_wait_ms=50, max_queue_pairs=40)
        b.on_batch = lambda n, tokens, s: batches.append((n, tokens))
        await b.start()
        try:
            results = await asyncio.gather(*(b.submit(p) for p in requests), return_exceptions=True)
        finally:
            await b.stop()
        return results

    results = asyncio.run(go())
    full = [r for r in results if isinstance(r, QueueFull)]
    assert len(full) == 1 and full[0].retry_after >= 1  # 6 x 7 pairs > 40: the last waits
    for got, want in zip(results[:5], serial[:5], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert all(tokens <= 256 for _, tokens in batches)  # the token budget holds
    assert max(n for n, _ in batches) > 7  # pairs of several requests shared a batch


def test_openvino_keeps_a_batch_in_flight_per_stream(tiny_model_dir):
    """Served through OpenVINO (THROUGHPUT hint, 2 threads: 2 streams), the batcher scores two
    batches at once, each on a thread with an infer request of its own; concurrent requests
    get the scores serial ones get."""
    import torch

    from cross_encoder.reranking import openvino
    from cross_encoder.serve.engine import Batcher, Scorer

    if not openvino.available():
        pytest.skip("the openvino extra is not installed")
    threads = torch.get_num_threads()
    try:
        ov = Scorer(str(tiny_model_dir), precision="fp32", backend="openvino", max_len=32,
                    threads=2)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert ov._ov.hint == "THROUGHPUT" and ov.workers == ov._ov.streams
    if ov.workers < 2:
        pytest.skip(f"OpenVINO chose {ov.workers} stream for 2 threads here")
    rng = np.random.default_rng(2)
    requests = [
        ov.build_pairs(_text(rng, 3), [_text(rng, int(n)) for n in rng.integers(1, 25, 9)], True)
        for _ in range(8)
    ]
    serial = [ov.score(pairs) for pairs in requests]
    both, lock, calls = threading.Barrier(2, timeout=20), threading.Lock(), []

    def score(pairs):
        with lock:
            calls.append(threading.current_thread().name)
            first_two = len(calls) <= 2
        if first_two:
            both.wait()  # the first two batches are in flight together, or this times out
        return ov.score(pairs)

    async def go():
        b = Batcher(score, max_batch_tokens=96, max_wait_ms=50, workers=ov.workers)
        await b.start()
        try:
            return await asyncio.gather(*(b.submit(p) for p in requests))
        finally:
            await b.stop()

    results = asyncio.run(go())
    for got, want in zip(results, serial, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert len(calls) > 2 and len(set(calls)) == 2  # two worker threads shared the batches


def test_backend_auto_keeps_the_faster_and_scores_as_torch(tiny_model_dir, monkeypatch):
    """``--backend auto`` (the server's default): on a CPU with the openvino extra, torch and
    OpenVINO are timed on probe pairs at start-up and the faster is kept, with the figures in
    ``/info``; the scores are the torch path's. Without the extra: torch, saying why."""
    import torch

    from cross_encoder.reranking import openvino
    from cross_encoder.serve.engine import Scorer

    threads = torch.get_num_threads()
    try:
        ref = Scorer(str(tiny_model_dir), precision="fp32", backend="torch", max_len=32, threads=2)
        pairs = ref.build_pairs("a query", ["one passage", "another passage here", "x"], True)
        want = ref.score(pairs)
        if openvino.available():
            auto = Scorer(str(tiny_model_dir), precision="fp32", backend="auto", max_len=32,
                          threads=2)  # fmt: skip
            info = auto.info()
            assert info["backend"] in ("torch", "openvino")
            assert info["backend_reason"].startswith(f"backend auto -> {info['backend']}: ")
            speed = info["backend_speed"]
            assert speed["openvino_pairs_per_s"] > 0 and speed["torch_pairs_per_s"] > 0
            assert (info["backend"] == "openvino") == (speed["openvino_vs_torch"] > 1)
            assert (auto._ov is not None) == (info["backend"] == "openvino")
            np.testing.assert_allclose(auto.score(pairs), want, rtol=1e-4, atol=1e-4)
        monkeypatch.setattr(openvino, "available", lambda: False)
        plain = Scorer(str(tiny_model_dir), precision="fp32", backend="auto", max_len=32,
                       threads=2)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert plain.backend == "torch" and plain._ov is None
    assert "OpenVINO is not installed" in plain.info()["backend_reason"]
    np.testing.assert_allclose(plain.score(pairs), want, rtol=1e-6, atol=1e-6)


def test_bad_flags_and_a_missing_model_stop_with_one_line(tmp_path, capsys):
    from cross_encoder.serve import main

    assert main(["--model", str(tmp_path), "--max_texts", "0"]) == 2
    assert "--max_texts must be >= 1" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nope"), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nope" in err[0]


# -- a real server ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, model: Path, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
        cmd = [sys.executable, "-m", "cross_encoder.serve", "--model", str(model),
               "--port", str(self.port), "--precision", "fp32", "--threads", "1",
               *args]  # fmt: skip
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def post(self, path: str, **kw):
        return httpx.post(self.url + path, timeout=60, **kw)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(separating_model_dir):
    s = ServerProcess(
        separating_model_dir, "--max_len", "24", "--max_texts", "20", "--max_body_bytes", "16384"
    )
    yield s
    assert s.stop() == 0


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.mark.slow
def test_tei_and_cohere_contracts(server):
    texts = ["cat dog fox", "river lake", "owl bee cow horse", "city"]
    raw = server.post("/rerank", json={"query": "cat fox", "texts": texts, "raw_scores": True})
    assert raw.status_code == 200, raw.text
    raw = raw.json()
    assert sorted(r["index"] for r in raw) == [0, 1, 2, 3]
    assert [r["score"] for r in raw] == sorted((r["score"] for r in raw), reverse=True)
    by_index = {r["index"]: r["score"] for r in raw}
    tei = server.post(
        "/rerank", json={"query": "cat fox", "texts": texts, "return_text": True, "foo": 1}
    ).json()
    assert [r["index"] for r in tei] == [r["index"] for r in raw]
    for r in tei:
        assert r["text"] == texts[r["index"]]
        assert r["score"] == pytest.approx(_sigmoid(by_index[r["index"]]), rel=1e-6)
    docs = [texts[0], {"text": texts[1], "title": "x"}, texts[2], texts[3]]
    for version in ("1", "2"):
        body = {"model": "ours", "query": "cat fox", "documents": docs, "top_n": 2,
                "return_documents": True, "rank_fields": ["text"], "unknown": {"a": 1}}  # fmt: skip
        c = server.post(f"/v{version}/rerank", json=body)
        assert c.status_code == 200, c.text
        c = c.json()
        assert c["meta"]["api_version"]["version"] == version
        assert len(c["id"]) == 36 and len(c["results"]) == 2
        for r, want in zip(c["results"], tei, strict=False):
            assert r["index"] == want["index"]
            assert r["relevance_score"] == pytest.approx(want["score"], rel=1e-6)
            assert 0 <= r["relevance_score"] <= 1
            assert r["document"] == {"text": texts[r["index"]]}
    plain = server.post("/v2/rerank", json={"query": "cat fox", "documents": texts}).json()
    assert len(plain["results"]) == 4 and "document" not in plain["results"][0]
    info = httpx.get(server.url + "/info").json()
    assert info["max_len"] == 24 and info["precision"] == "fp32"
    # the default --backend auto kept one of the two, timed here
    assert info["backend_reason"].startswith(f"backend auto -> {info['backend']}: ")
    assert "as asked" in info["precision_reason"]
    metrics = httpx.get(server.url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ('rerank_requests_total{endpoint="/rerank",status="200"}',
                 "rerank_pairs_scored_total", "rerank_request_duration_seconds_bucket",
                 "rerank_batch_pairs_bucket", "rerank_queue_pairs"):  # fmt: skip
        assert name in metrics.text


def _dev_ranking_through(server, tiny_data, at_once=False) -> dict[tuple[str, str], float]:
    """Raw scores of the tiny dev ranking's pairs, one TEI request per query (``at_once``: all
    the requests concurrently)."""
    from cross_encoder.preprocess import passage_text

    corpus = {}
    for line in tiny_data["corpus"].read_text().splitlines():
        pid, title, text = line.split("\t")
        corpus[pid] = passage_text(title, text, "[SEP]", use_title=True)
    queries = dict(line.split("\t") for line in tiny_data["dev_queries"].read_text().splitlines())
    ranking: dict[str, list[str]] = {}
    for line in tiny_data["test_file"].read_text().splitlines():
        qid, pid = line.split("\t")[:2]
        ranking.setdefault(qid, []).append(pid)
    bodies = [{"query": queries[qid], "texts": [corpus[d] for d in pids], "raw_scores": True,
               "truncate": True} for qid, pids in ranking.items()]  # fmt: skip
    if at_once:

        async def go():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                return await asyncio.gather(*(client.post("/rerank", json=b) for b in bodies))

        answers = asyncio.run(go())
    else:
        answers = [server.post("/rerank", json=body) for body in bodies]
    got = {}
    for (qid, pids), r in zip(ranking.items(), answers, strict=True):
        assert r.status_code == 200, r.text
        for item in r.json():
            got[(qid, pids[item["index"]])] = item["score"]
    return got


def _predict_argv(model_dir, tiny_data, p, out: Path, max_len: int) -> list[str]:
    return ["--output_dir", str(out / "o"), "--model_name_or_path", str(model_dir),
            "--do_predict", "--precision", "fp32", "--max_len", str(max_len),
            "--corpus_file", str(p / "corpus"), "--test_query_file", str(p / "dev_query"),
            "--test_file", str(tiny_data["test_file"]),
            "--prediction_save_path", str(out / "scores.txt"),
            "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip


@pytest.mark.slow
def test_same_scores_as_run_predict(server, separating_model_dir, tiny_data, tiny_preprocessed,
                                    tmp_path):  # fmt: skip
    """A dev ranking scored by ``cross_encoder.run --do_predict`` and through the server."""
    from cross_encoder import run
    from cross_encoder.io import read_scores

    argv = _predict_argv(separating_model_dir, tiny_data, tiny_preprocessed, tmp_path, 24)
    assert run.main(argv) == 0
    out = tmp_path / "scores.txt"
    want = {(q, d): s for q, row in read_scores(out).items() for d, s in row.items()}
    got = _dev_ranking_through(server, tiny_data)
    assert got.keys() == want.keys()
    keys = sorted(want)
    np.testing.assert_allclose(
        [got[k] for k in keys], [want[k] for k in keys], rtol=1e-5, atol=1e-5
    )
    assert np.std(list(want.values())) > 0.05  # the model separates: a wrong layout would show


@pytest.mark.slow
def test_fifty_concurrent_requests_equal_serial_ones(server):
    rng = np.random.default_rng(1)
    bodies = [{"query": _text(rng, 3), "texts": [_text(rng, int(n)) for n in
               rng.integers(1, 20, int(rng.integers(1, 20)))], "raw_scores": True,
               "truncate": True} for _ in range(50)]  # fmt: skip
    serial = [server.post("/rerank", json=b).json() for b in bodies]

    async def go():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            return await asyncio.gather(*(client.post("/rerank", json=b) for b in bodies))

    concurrent = asyncio.run(go())
    assert [r.status_code for r in concurrent] == [200] * 50
    for c, s in zip(concurrent, serial, strict=True):
        c = {r["index"]: r["score"] for r in c.json()}
        s = {r["index"]: r["score"] for r in s}
        assert c.keys() == s.keys()
        np.testing.assert_allclose([c[i] for i in s], list(s.values()), rtol=1e-5, atol=1e-5)


def _bad_inputs():
    ok = {"query": "cat", "texts": ["dog"]}
    j = "application/json"
    long_text = " ".join(["cat"] * 40)
    return [  # (path, body or bytes, content type, status, field)
        ("/rerank", {"texts": ["dog"]}, j, 422, "query"),
        ("/rerank", {"query": "  ", "texts": ["dog"]}, j, 422, "query"),
        ("/rerank", {"query": 3, "texts": ["dog"]}, j, 422, "query"),
        ("/rerank", {"query": "cat", "texts": []}, j, 422, "texts"),
        ("/rerank", {"query": "cat"}, j, 422, "texts"),
        ("/rerank", {"query": "cat", "texts": "dog"}, j, 422, "texts"),
        ("/rerank", {"query": "cat", "texts": ["dog", None]}, j, 422, "texts[1]"),
        ("/rerank", {"query": "cat", "texts": ["dog"] * 21}, j, 413, "texts"),
        ("/rerank", {"query": "cat", "texts": ["dog", long_text]}, j, 413, "texts[1]"),
        ("/rerank", {**ok, "raw_scores": "yes"}, j, 422, "raw_scores"),
        ("/rerank", {**ok, "truncation_direction": "Up"}, j, 422, "truncation_direction"),
        ("/rerank", ["cat"], j, 422, "body"),
        ("/rerank", b'{"query": "cat", "texts": ["dog"', j, 400, "body"),
        ("/rerank", b'{"query": "caf\xe9", "texts": ["dog"]}', j, 400, "body"),
        ("/rerank", b'{"query": "cat", "texts": ["dog"]}', "text/plain", 415, "body"),
        ("/rerank", b'{"query": "cat", "texts": ["dog"]}', None, 415, "body"),
        ("/rerank", {"query": "cat", "texts": ["dog " * 5000]}, j, 413, "body"),
        ("/v2/rerank", {"query": "cat", "documents": ["dog"], "top_n": 0}, j, 422, "top_n"),
        ("/v2/rerank", {"query": "cat", "documents": ["dog"], "top_n": "2"}, j, 422, "top_n"),
        ("/v1/rerank", {"query": "c", "documents": [{"title": "x"}]}, j, 422, "documents[0].text"),
        ("/v2/rerank", {"query": "cat", "documents": [3]}, j, 422, "documents[0]"),
        ("/v2/rerank", {"query": "cat", "documents": []}, j, 422, "documents"),
        ("/v2/rerank", {"documents": ["dog"]}, j, 422, "query"),
        ("/v2/rerank", {"query": "c", "documents": ["d"], "max_tokens_per_doc": 0}, j, 422,
         "max_tokens_per_doc"),
        ("/v2/rerank", {"query": "cat", "documents": ["d"], "model": 5}, j, 422, "model"),
    ]  # fmt: skip


@pytest.mark.slow
def test_bad_input_gets_a_4xx_naming_the_field(server):
    import json

    for path, body, ctype, status, field in _bad_inputs():
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": ctype} if ctype else {}
        r = server.post(path, content=content, headers=headers)
        assert r.status_code == status, (path, body, r.status_code, r.text)
        err = r.json()
        assert err["field"] == field, (body, err)
        assert err["error"] and err["message"] == err["error"] and err["error_type"]
    assert httpx.get(server.url + "/rerank").status_code == 405
    assert httpx.get(server.url + "/nope").json()["error"]
    # a long text is fine with truncation (TEI) and always on Cohere's routes (they cut)
    long_body = {"query": "cat", "texts": ["cat " * 40], "truncate": True}
    assert server.post("/rerank", json=long_body).status_code == 200
    assert (
        server.post("/v2/rerank", json={"query": "c", "documents": ["cat " * 40]}).status_code
        == 200
    )
    assert httpx.get(server.url + "/health").status_code == 200
    assert server.proc.poll() is None
    assert "Traceback" not in server.output()


@pytest.mark.slow
def test_flood_gets_429_and_the_server_stays_up(separating_model_dir):
    s = ServerProcess(separating_model_dir, "--max_queue_pairs", "40", "--max_wait_ms", "200")
    try:
        body = {"query": "cat", "texts": ["dog fox owl"] * 32}

        async def flood():
            async with httpx.AsyncClient(base_url=s.url, timeout=60) as client:
                return await asyncio.gather(*(client.post("/rerank", json=body) for _ in range(40)))

        responses = asyncio.run(flood())
        codes = [r.status_code for r in responses]
        assert set(codes) == {200, 429}, codes
        assert codes.count(429) >= 20
        for r in responses:
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error_type"] == "Overloaded"
        assert s.post("/rerank", json=body).status_code == 200
        metrics = httpx.get(s.url + "/metrics").text
        assert 'rerank_requests_total{endpoint="/rerank",status="429"}' in metrics
    finally:
        assert s.stop() == 0


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight(separating_model_dir):
    # a long max_wait keeps the request in the batcher while SIGTERM arrives
    s = ServerProcess(separating_model_dir, "--max_wait_ms", "2000")
    result = {}

    def request():
        result["r"] = s.post("/rerank", json={"query": "cat", "texts": ["dog", "cat fox"]})

    t = threading.Thread(target=request)
    t.start()
    time.sleep(0.7)
    s.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert s.proc.wait(timeout=60) == 0, s.output()
    assert result["r"].status_code == 200 and len(result["r"].json()) == 2
    with pytest.raises(httpx.TransportError):
        httpx.get(s.url + "/health", timeout=2)
    s.stop()


# -- the int8 model the run's quantize step accepted ----------------------------------------------
def test_quantize_finds_and_judges_the_runs_decision(tiny_model_dir, separating_model_dir,
                                                     tmp_path):  # fmt: skip
    """``--quantize``'s choice from a decision file (the int8 model itself: the slow test)."""
    import json

    from cross_encoder import hardware
    from cross_encoder.io import InputError
    from cross_encoder.reranking import quantize
    from cross_encoder.serve import int8

    c = int8.choose(tiny_model_dir, "auto", None, "torch fp32")
    assert not c.use and "no quantization.json" in c.reason
    with pytest.raises(InputError, match="--quantize int8: no quantization.json"):
        int8.choose(tiny_model_dir, "int8", None, "torch fp32")
    assert "quantize none" in int8.choose(tiny_model_dir, "none", None, "x").reason
    # the workflow's layout: results/<run>/{hub_model,rerank/quantization.json}
    run_dir = tmp_path / "results" / "r"
    (run_dir / "rerank" / "int8").mkdir(parents=True)
    path = run_dir / "rerank" / "quantization.json"
    speed = {"speedup": 1.8, "cpu": hardware.describe_cpu()}
    decision = {"accepted": True, "reason": "fine", "model": str(tiny_model_dir), "speed": speed,
                "int8_dir": "int8", "full_precision_path": "torch fp32"}  # fmt: skip
    path.write_text(json.dumps({**decision, "model": "results/gone/model"}))
    c = int8.choose(tiny_model_dir, "auto", str(path), "torch fp32")
    assert not c.use and "not found to compare weights" in c.reason
    path.write_text(json.dumps(decision))
    c = int8.choose(separating_model_dir, "auto", str(path), "torch fp32")
    assert not c.use and "weights differ" in c.reason
    with pytest.raises(InputError, match="weights differ"):
        int8.choose(separating_model_dir, "int8", str(path), "torch fp32")
    path.write_text(json.dumps({**decision, "accepted": False, "reason": "too far"}))
    c = int8.choose(tiny_model_dir, "int8", str(path), "torch fp32")
    assert not c.use and "rejected on dev: too far" in c.reason
    if quantize.missing_extra() is not None:
        return
    path.write_text(json.dumps(decision))
    c = int8.choose(tiny_model_dir, "auto", str(path), "torch fp32")
    assert not c.use and "holds no model" in c.reason
    (run_dir / "rerank" / "int8" / quantize.INT8_XML).write_text("<net/>")
    c = int8.choose(tiny_model_dir, "auto", str(path), "torch fp32")
    assert c.use and "1.80x" in c.reason and c.speed["source"].startswith("the quantize step")
    assert c.int8_dir == str(run_dir / "rerank" / "int8")
    path.write_text(json.dumps({**decision, "speed": {**speed, "speedup": 0.9}}))
    c = int8.choose(tiny_model_dir, "auto", str(path), "torch fp32")
    assert not c.use and "only 0.90x" in c.reason
    # timed here when the decision's timing is of another path
    c = int8.choose(tiny_model_dir, "auto", str(path), "openvino fp32",
                    probe=lambda d: {"speedup": 2.0})  # fmt: skip
    assert c.use and c.speed["source"].startswith("timed at start-up")


@pytest.mark.slow
def test_int8_scores_equal_run_predicts_int8(separating_model_dir, tiny_model_dir, tiny_data,
                                             tiny_preprocessed, tmp_path):  # fmt: skip
    """The run's own ``--quantize int8`` predict writes the decision and the int8 model and
    scores the dev ranking; the server finds that model and gives the same scores."""
    import json

    from cross_encoder import run
    from cross_encoder.io import read_scores
    from cross_encoder.reranking import quantize
    from cross_encoder.serve import main
    from cross_encoder.serve.engine import Scorer

    if quantize.missing_extra() is not None:
        pytest.skip("the openvino extra is not installed")
    p = tiny_preprocessed
    decision = tmp_path / "rerank" / "quantization.json"
    argv = _predict_argv(separating_model_dir, tiny_data, p, tmp_path, 48) + [
        "--quantize", "int8", "--quantization_file", str(decision),
        "--eval_query_file", str(p / "dev_query"), "--eval_file", str(tiny_data["test_file"]),
        "--eval_qrels", str(tiny_data["dev_qrels"]),
        "--train_query_file", str(p / "train_query"), "--neg_file", str(tiny_data["neg_file"]),
        "--train_qrels", str(p / "train_qrels.txt"),
        "--prediction_topk", "12", "--quantize_calibration_pairs", "40",
    ]  # fmt: skip
    assert run.main(argv) == 0
    assert json.loads(decision.read_text())["accepted"]
    want = {(q, d): s for q, row in read_scores(tmp_path / "scores.txt").items()
            for d, s in row.items()}  # fmt: skip
    # 2 threads: 2 OpenVINO streams (THROUGHPUT), a batch in flight on each
    s = ServerProcess(separating_model_dir, "--max_len", "48", "--quantize", "int8",
                      "--quantization_file", str(decision), "--threads", "2",
                      "--max_batch_tokens", "512")  # fmt: skip
    try:
        info = httpx.get(s.url + "/info").json()
        got = _dev_ranking_through(s, tiny_data)
        at_once = _dev_ranking_through(s, tiny_data, at_once=True)
    finally:
        assert s.stop() == 0
    assert info["precision"] == "int8" and info["backend"] == "openvino"
    assert info["threads"] == 2 and 1 <= info["batches_in_flight"] <= 2
    assert at_once.keys() == got.keys()  # concurrent requests: the scores of serial ones
    np.testing.assert_allclose([at_once[k] for k in got], list(got.values()), rtol=1e-5,
                               atol=1e-5)  # fmt: skip
    assert info["quantize"]["int8"] and info["quantize"]["decision_file"] == str(decision)
    assert "int8 accepted on dev" in info["precision_reason"]
    keys = sorted(want)
    np.testing.assert_allclose(
        [got[k] for k in keys], [want[k] for k in keys], rtol=1e-4, atol=1e-4
    )
    # the full-precision model scores differently: int8 really ran
    fp = Scorer(str(separating_model_dir), precision="fp32", max_len=48, threads=1)
    assert fp.info()["quantize"]["int8"] is False
    # a decision made for other weights is refused (int8) or passed over (auto)
    other = Scorer(str(tiny_model_dir), precision="fp32", max_len=48, threads=1,
                   quantize="auto", quantization_file=str(decision))  # fmt: skip
    assert not other.int8.use and "weights differ" in other.int8.reason
    assert main(["--model", str(tiny_model_dir), "--quantize", "int8",
                 "--quantization_file", str(decision)]) == 2  # fmt: skip
