"""Serving under concurrent load: our server (``python -m cross_encoder.serve``) against
Infinity (``infinity_emb v2``, its ``/rerank``) and the naive server a user writes (FastAPI +
sentence-transformers ``CrossEncoder.predict`` per request, ``naive_serve.py``), all serving
the same model folder on this machine, on 127.0.0.1.

    flock /tmp/cpu.lock python benchmarks/bench_serve.py --json serve.json
    # a seconds-long check of the script itself (figures meaningless):
    python benchmarks/bench_serve.py --clients 1,2 --requests 2 --passages 5 --systems ours

Each request: one SciFact claim (test queries) and 100 SciFact abstracts cut to 30-110 words
(MS MARCO passage length), the same seeded requests for every system. For 1, 8 and 32
concurrent clients (closed loop: a client sends its next request when the last one is
answered; ``--requests`` per client, a bounded loop), the p50/p99 request latency, pairs/s
(pairs answered / wall time of the level) and failed requests. Systems take turns per level
and round (A B C, then C B A, ...); figures pool the rounds. All three servers stay up for
the whole run (idle when not measured).

The model: ``--model_dir``, or (default) the packaged all-MiniLM-L6-v2 turned into a
cross-encoder folder (its encoder + a seeded random score head, saved with max_len 256 as
``model_max_length``; no passage here is cut): speed does not depend on the head's weights.

``ours-openvino`` is our server with ``--backend openvino`` (the ``openvino`` extra).

Infinity runs from its own venv (``--infinity_python``; ``infinity-emb[server,torch]==0.0.78``
with torch 2.13.0 CPU installed first), engine torch on the CPU at ``--infinity_dtype``;
telemetry off; ``infinity-bf16`` is the same at ``--dtype bfloat16`` (this CPU's AMX; our
server picks bf16 by itself here). A system that cannot start is reported with the reason,
the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dir", default=None, help="default: packaged MiniLM as cross-encoder")
    p.add_argument("--work_dir", default=None, help="where the default model folder goes")
    near = [d / "shared" / "data" / "scifact" for d in (REPO.parent, REPO.parents[1])]
    p.add_argument("--scifact_dir", default=str(next((d for d in near if d.is_dir()), near[0])))
    p.add_argument("--systems", default="ours,ours-openvino,infinity,infinity-bf16,naive")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", default="4,2,1", help="requests per client, per level")
    p.add_argument("--passages", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--infinity_python", default="/work/venv-infinity/bin/python")
    p.add_argument("--infinity_dtype", default="auto")
    p.add_argument("--ours_args", default="", help="extra flags for cross_encoder.serve")
    p.add_argument("--json", default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# -- data and model ---------------------------------------------------------------------------
def load_requests(scifact: Path, n: int, passages: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    with open(scifact / "queries.jsonl") as f:
        queries = [json.loads(line)["text"] for line in f]
    with open(scifact / "corpus.jsonl") as f:
        docs = [w for w in (json.loads(line)["text"].split() for line in f) if len(w) >= 30]
    out = []
    for _ in range(n):
        texts = []
        for words in rng.sample(docs, passages):
            k = rng.randint(30, min(110, len(words)))
            texts.append(" ".join(words[:k]))
        out.append({"query": rng.choice(queries), "texts": texts})
    return out


def build_model(out: Path) -> Path:
    """The packaged all-MiniLM-L6-v2 as a cross-encoder folder (seeded random head)."""
    import torch

    from cross_encoder import modeling
    from cross_encoder.modeling import card
    from cross_encoder.training.arguments import ModelArguments

    if (out / "model.safetensors").exists():
        return out
    torch.manual_seed(0)
    tok = modeling.load_tokenizer("all-MiniLM-L6-v2")
    model = modeling.load_model(ModelArguments(model_name_or_path="all-MiniLM-L6-v2"))
    card.prepare_for_hub(model, tok, 256)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


# -- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, path: str, env: dict | None = None):
        self.name, self.port, self.path = name, port, path
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"bench-{name}-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )  # fmt: skip
        self.error: str | None = None

    def wait_ready(self, timeout: float = 300) -> bool:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.error = f"exited {self.proc.returncode}: {self.tail()}"
                return False
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.error = f"not ready after {timeout:.0f} s: {self.tail()}"
        return False

    def tail(self, n: int = 6) -> str:
        self.log.seek(0)
        return " | ".join(self.log.read().strip().splitlines()[-n:])

    def body(self, req: dict) -> dict:
        if self.name.startswith("infinity"):
            return {"query": req["query"], "documents": req["texts"], "model": "model"}
        if self.name.startswith(
            "ours"
        ):  # the others cut long pairs silently; TEI's default is a 413
            return {**req, "truncate": True}
        return req

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_servers(systems: list[str], model: Path, args) -> dict[str, Server]:
    servers = {}
    threads = str(os.cpu_count() or 1)
    for name in systems:
        port = free_port()
        if name.startswith("ours"):
            backend = ["--backend", "openvino"] if name == "ours-openvino" else []
            cmd = [sys.executable, "-m", "cross_encoder.serve", "--model", str(model),
                   "--port", str(port), "--log_level", "warning", *backend,
                   *args.ours_args.split()]  # fmt: skip
            env = {"PYTHONPATH": str(REPO / "src")}
            servers[name] = Server(name, cmd, port, "/rerank", env)
        elif name == "naive":
            cmd = [sys.executable, str(HERE / "naive_serve.py"), str(model), str(port)]
            servers[name] = Server(name, cmd, port, "/rerank", {"OMP_NUM_THREADS": threads})
        elif name.startswith("infinity"):
            dtype = "bfloat16" if name == "infinity-bf16" else args.infinity_dtype
            if not Path(args.infinity_python).exists():
                print(f"infinity: skipped, no {args.infinity_python}")
                continue
            cmd = [str(Path(args.infinity_python).parent / "infinity_emb"), "v2",
                   "--model-id", str(model), "--served-model-name", "model", "--engine", "torch",
                   "--device", "cpu", "--dtype", dtype, "--port", str(port),
                   "--host", "127.0.0.1", "--log-level", "warning"]  # fmt: skip
            env = {"INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1",
                   "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}  # fmt: skip
            servers[name] = Server(name, cmd, port, "/rerank", env)
    try:
        for name, s in list(servers.items()):
            if not s.wait_ready():
                print(f"{name}: could not start: {s.error}")
                s.stop()
                del servers[name]
    except BaseException:
        for s in servers.values():
            s.stop()
        raise
    return servers


# -- load ---------------------------------------------------------------------------------------
async def run_level(server: Server, requests: list[dict], clients: int, per_client: int) -> dict:
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    pairs = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server.url, timeout=600, limits=limits) as client:

        async def one(c: int):
            nonlocal pairs
            for k in range(per_client):  # bounded
                req = requests[(c * per_client + k) % len(requests)]
                start = time.perf_counter()
                try:
                    r = await client.post(server.path, json=server.body(req))
                    ok = r.status_code == 200
                    data = r.json() if ok else None
                    results = data["results"] if isinstance(data, dict) else data
                    ok = ok and len(results) == len(req["texts"])
                except Exception as e:  # a lost request is a figure, not a crash
                    ok, r = False, e
                latencies.append(time.perf_counter() - start)
                if ok:
                    pairs += len(req["texts"])
                else:
                    failures.append(str(getattr(r, "status_code", r))[:200])

        start = time.perf_counter()
        await asyncio.gather(*(one(c) for c in range(clients)))
        wall = time.perf_counter() - start
    return {"latencies": latencies, "pairs": pairs, "wall": wall, "failures": failures}


async def scores_of(server: Server, req: dict) -> np.ndarray:
    import httpx

    async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:
        r = (await client.post(server.path, json=server.body(req))).json()
    items = r["results"] if isinstance(r, dict) else r
    out = np.zeros(len(req["texts"]))
    for it in items:
        out[it["index"]] = it.get("score", it.get("relevance_score"))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    from cross_encoder import hardware

    levels = [int(x) for x in args.clients.split(",")]
    per = [int(x) for x in args.requests.split(",")]
    per = (per + per[-1:] * len(levels))[: len(levels)]
    n_req = max(c * k for c, k in zip(levels, per, strict=True))
    requests = load_requests(Path(args.scifact_dir), n_req, args.passages, args.seed)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_serve_"))
    model = Path(args.model_dir) if args.model_dir else build_model(work / "minilm-cross-encoder")
    print(f"CPU: {hardware.describe_cpu()}; {os.cpu_count()} cores")
    print(f"load average before: {os.getloadavg()}")
    print(
        f"model: {model}" + ("" if args.model_dir else " (packaged all-MiniLM-L6-v2 + random head)")
    )
    words = [len(t.split()) for r in requests for t in r["texts"]]
    print(f"requests: 1 query + {args.passages} passages of {min(words)}-{max(words)} words "
          f"(mean {np.mean(words):.0f}), SciFact text")  # fmt: skip
    # a timeout's SIGTERM must still stop the servers (they run in sessions of their own)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    servers = start_servers(args.systems.split(","), model, args)
    figures: dict = {"systems": {}, "cpu": hardware.describe_cpu()}
    try:
        for name in ("ours", "ours-openvino"):
            if name in servers:
                import httpx

                info = httpx.get(servers[name].url + "/info").json()
                figures[f"{name}_info"] = info
                print(f"{name}: {info['dtype']} ({info['precision_reason']}), "
                      f"max_len {info['max_len']}")  # fmt: skip
        if "infinity" in servers:
            print(f"infinity: engine torch, dtype {args.infinity_dtype}, CPU")
        if "infinity-bf16" in servers:
            print("infinity-bf16: engine torch, dtype bfloat16, CPU")
        # warm-up: one request each (model load, allocator, first-batch compile paths)
        for s in servers.values():
            asyncio.run(run_level(s, requests, 1, 1))
        pooled = {n: {c: [] for c in levels} for n in servers}
        names = list(servers)
        for rnd in range(args.rounds):
            for c, k in zip(levels, per, strict=True):
                for name in names if rnd % 2 == 0 else names[::-1]:
                    res = asyncio.run(run_level(servers[name], requests, c, k))
                    pooled[name][c].append(res)
                    lat = np.array(res["latencies"])
                    print(f"  round {rnd + 1} {name:13s} {c:3d} clients: "
                          f"{res['pairs'] / res['wall']:7.1f} pairs/s, p50 "
                          f"{np.percentile(lat, 50):.3f} s, p99 {np.percentile(lat, 99):.3f} s, "
                          f"{len(res['failures'])} failed", flush=True)  # fmt: skip
        agree = {}
        if "ours" in servers:
            ref = asyncio.run(scores_of(servers["ours"], requests[0]))
            from scipy.stats import spearmanr

            for name in servers:
                if name != "ours":
                    other = asyncio.run(scores_of(servers[name], requests[0]))
                    agree[name] = float(spearmanr(ref, other).statistic)
    finally:
        for s in servers.values():
            s.stop()
    print(f"load average after: {os.getloadavg()}")
    print()
    print(f"{'system':13s} {'clients':>7s} {'p50 s':>8s} {'p99 s':>8s} {'pairs/s':>8s} "
          f"{'requests':>8s} {'failed':>6s}")  # fmt: skip
    for name in servers:
        figures["systems"][name] = {}
        for c in levels:
            runs = pooled[name][c]
            lat = np.array([x for r in runs for x in r["latencies"]])
            rate = sum(r["pairs"] for r in runs) / sum(r["wall"] for r in runs)
            failed = sum(len(r["failures"]) for r in runs)
            row = {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                   "pairs_per_s": rate, "requests": int(lat.size), "failed": failed,
                   "failures": [f for r in runs for f in r["failures"]][:5]}  # fmt: skip
            figures["systems"][name][c] = row
            print(f"{name:13s} {c:7d} {row['p50']:8.3f} {row['p99']:8.3f} {rate:8.1f} "
                  f"{lat.size:8d} {failed:6d}")  # fmt: skip
    print()
    ours = figures["systems"].get("ours")
    top = max(levels)
    for mine in ("ours", "ours-openvino"):
        for name in ("infinity", "infinity-bf16", "naive"):
            a, b = figures["systems"].get(mine), figures["systems"].get(name)
            if a and b:
                ratio = a[top]["pairs_per_s"] / b[top]["pairs_per_s"]
                figures[f"{mine}_over_{name}_{top}"] = ratio
                print(f"{mine} / {name} pairs/s at {top} clients: {ratio:.2f}x"
                      + ("  (target >= 1.5x)" if name.startswith("infinity") else ""))  # fmt: skip
    if ours and 1 in ours and 8 in ours:
        r = ours[8]["p99"] / ours[1]["p50"]
        figures["ours_p99_8_over_p50_1"] = r
        queued = 8 * args.passages / ours[8]["pairs_per_s"]
        print(f"ours p99 at 8 clients / p50 at 1 client: {r:.2f} (target <= 3); 8 closed-loop "
              f"clients at that throughput wait ~{queued:.2f} s (Little)")  # fmt: skip
    failed = sum(row["failed"] for s in figures["systems"].values() for row in s.values())
    print(f"failed requests, all systems and levels: {failed}")
    for name, rho in agree.items():
        print(f"Spearman of ours vs {name} on request 0: {rho:.4f}")
    figures["spearman_vs_ours"] = agree
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
