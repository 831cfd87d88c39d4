"""Serving under concurrent load: our server (``python -m cross_encoder.serve``) against
Infinity (``infinity_emb v2``, its ``/rerank``) and the naive server a user writes (FastAPI +
sentence-transformers ``CrossEncoder.predict`` per request, ``naive_serve.py``), all serving
the same model folder on this machine, on 127.0.0.1.

    python benchmarks/bench_serve.py --model_dir results/default/hub_model --lock /tmp/cpu.lock \
        --json serve.json
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

Ours: ``ours`` is the server at its defaults (``--quantize auto``: the int8 model the run's
quantize step accepted on dev, where it is next to the model folder and faster here;
``--precision auto``; ``--backend auto``: torch or OpenVINO, whichever timed faster at start-up,
where int8 is not used); ``ours-bf16`` is torch in full precision (``--quantize none --backend
torch``: bf16 weights on an AMX CPU, else fp32); ``ours-openvino`` is ``--quantize none
--backend openvino`` (the ``openvino`` extra).

Infinity runs from its own venv (``--infinity_python``; ``infinity-emb[server,torch]==0.0.78``
with torch 2.13.0 CPU installed first, and ``optimum[onnxruntime]==2.1.0`` for its ONNX engine),
telemetry off: ``infinity`` is engine torch at ``--infinity_dtype`` (its default: fp32 here),
``infinity-bf16`` engine torch at ``--dtype bfloat16`` (this CPU's AMX), ``infinity-onnx``
engine optimum (ONNX Runtime; Infinity optimizes the graph itself) on the model exported by
``optimum-cli export onnx``, ``infinity-onnx-int8`` the same folder plus the dynamic int8 model
of ``optimum-cli onnxruntime quantize --avx512_vnni`` (Infinity prefers a ``*quantized*.onnx``
on a CPU; no accuracy guard). The script builds both folders with the Infinity venv's
``optimum-cli`` in ``--work_dir``. A system that cannot start is reported with the reason, the
others still run.

``--lock /tmp/cpu.lock``: take that file lock (``flock``) for the start-up and for each round
separately (each hold a few minutes on a shared machine; the servers idle in between).
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
    p.add_argument(
        "--systems",
        default="ours,ours-bf16,infinity-bf16,infinity-onnx,infinity-onnx-int8,naive",
        help="of ours, ours-bf16, ours-openvino, infinity, infinity-bf16, infinity-onnx, "
        "infinity-onnx-int8, naive",
    )
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", default="4,2,1", help="requests per client, per level")
    p.add_argument("--passages", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--infinity_python", default="/work/venv-infinity/bin/python")
    p.add_argument("--infinity_dtype", default="auto")
    p.add_argument("--ours_args", default="", help="extra flags for cross_encoder.serve")
    p.add_argument("--lock", default=None, help="flock this file per phase (start-up, round)")
    p.add_argument("--one_hold", action="store_true", help="one lock hold for the whole run")
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


def onnx_folder(model: Path, work: Path, python: str, int8: bool) -> Path:
    """``model`` exported to ONNX by the Infinity venv's ``optimum-cli`` (and, with ``int8``,
    with the dynamic int8 model of ``optimum-cli onnxruntime quantize --avx512_vnni`` beside
    it): a folder Infinity's optimum engine serves."""
    cli = str(Path(python).parent / "optimum-cli")
    fp32 = work / "infinity-onnx"
    env = {**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1"}

    def run(cmd):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd[:4])} failed: {r.stderr.strip()[-300:]}")

    if not (fp32 / "model.onnx").is_file():
        run([cli, "export", "onnx", "--model", str(model), "--task", "text-classification",
             str(fp32)])  # fmt: skip
    if not int8:
        return fp32
    out = work / "infinity-onnx-int8"
    if not (out / "model_quantized.onnx").is_file():
        run([cli, "onnxruntime", "quantize", "--avx512_vnni", "--onnx_model", str(fp32),
             "-o", str(out)])  # fmt: skip
        (out / "model.onnx").symlink_to(fp32 / "model.onnx")  # Infinity picks the quantized
    return out


def start_servers(systems: list[str], model: Path, work: Path, args) -> dict[str, Server]:
    servers = {}
    threads = str(os.cpu_count() or 1)
    for name in systems:
        port = free_port()
        if name.startswith("ours"):
            extra = {"ours": [], "ours-bf16": ["--quantize", "none", "--backend", "torch"],
                     "ours-openvino":
                     ["--quantize", "none", "--backend", "openvino"]}[name]  # fmt: skip
            cmd = [sys.executable, "-m", "cross_encoder.serve", "--model", str(model),
                   "--port", str(port), "--log_level", "warning", *extra,
                   *args.ours_args.split()]  # fmt: skip
            env = {"PYTHONPATH": str(REPO / "src")}
            servers[name] = Server(name, cmd, port, "/rerank", env)
        elif name == "naive":
            cmd = [sys.executable, str(HERE / "naive_serve.py"), str(model), str(port)]
            servers[name] = Server(name, cmd, port, "/rerank", {"OMP_NUM_THREADS": threads})
        elif name.startswith("infinity"):
            dtype = "bfloat16" if name == "infinity-bf16" else args.infinity_dtype
            if not Path(args.infinity_python).exists():
                print(f"{name}: skipped, no {args.infinity_python}")
                continue
            engine, folder = "torch", model
            if name.startswith("infinity-onnx"):
                engine, dtype = "optimum", "auto"
                try:
                    folder = onnx_folder(model, work, args.infinity_python, name.endswith("int8"))
                except RuntimeError as e:
                    print(f"{name}: could not start: {e}")
                    continue
            cmd = [str(Path(args.infinity_python).parent / "infinity_emb"), "v2",
                   "--model-id", str(folder), "--served-model-name", "model", "--engine", engine,
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
    print(
        f"model: {model}" + ("" if args.model_dir else " (packaged all-MiniLM-L6-v2 + random head)")
    )
    words = [len(t.split()) for r in requests for t in r["texts"]]
    print(f"requests: 1 query + {args.passages} passages of {min(words)}-{max(words)} words "
          f"(mean {np.mean(words):.0f}), SciFact text")  # fmt: skip
    # a timeout's SIGTERM must still stop the servers (they run in sessions of their own)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    names_wanted = args.systems.split(",")
    # one hold for the start-up and round 1, one per later round (each a few minutes)
    first = hold(args.lock, "start-up and every round" if args.one_hold else "start-up and round 1")
    first.__enter__()
    try:
        servers = start_servers(names_wanted, model, work, args)
    except BaseException:
        first.__exit__()
        raise
    try:
        describe(servers, args)
        # warm-up: one request each (model load, allocator, first-batch compile paths)
        for s in servers.values():
            asyncio.run(run_level(s, requests, 1, 1))
    except BaseException:
        first.__exit__()
        for s in servers.values():
            s.stop()
        raise
    figures: dict = {"systems": {}, "cpu": hardware.describe_cpu(), "cores": os.cpu_count(),
                     "model": str(model), "info": INFO, "rounds": []}  # fmt: skip
    try:
        pooled = {n: {c: [] for c in levels} for n in servers}
        names = list(servers)
        for rnd in range(args.rounds):
            one = args.one_hold and rnd < args.rounds - 1  # keep holding for the next round
            with (
                first if rnd == 0 or args.one_hold else hold(args.lock, f"round {rnd + 1}") as phase
            ):
                if one:
                    first.keep = True
                for c, k in zip(levels, per, strict=True):
                    for name in names if rnd % 2 == 0 else names[::-1]:
                        res = asyncio.run(run_level(servers[name], requests, c, k))
                        pooled[name][c].append(res)
                        lat = np.array(res["latencies"])
                        print(f"  round {rnd + 1} {name:18s} {c:3d} clients: "
                              f"{res['pairs'] / res['wall']:7.1f} pairs/s, p50 "
                              f"{np.percentile(lat, 50):.3f} s, p99 "
                              f"{np.percentile(lat, 99):.3f} s, {len(res['failures'])} failed",
                              flush=True)  # fmt: skip
            figures["rounds"].append(phase)
        agree = {}
        if "ours" in servers:
            from scipy.stats import spearmanr

            ref = asyncio.run(scores_of(servers["ours"], requests[0]))
            for name in servers:
                if name != "ours":
                    other = asyncio.run(scores_of(servers[name], requests[0]))
                    agree[name] = float(spearmanr(ref, other).statistic)
    finally:
        for s in servers.values():
            s.stop()
    print(f"load average after: {os.getloadavg()}")
    print()
    print(f"{'system':18s} {'clients':>7s} {'p50 s':>8s} {'p99 s':>8s} {'pairs/s':>8s} "
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
            print(f"{name:18s} {c:7d} {row['p50']:8.3f} {row['p99']:8.3f} {rate:8.1f} "
                  f"{lat.size:8d} {failed:6d}")  # fmt: skip
    print()
    report_ratios(figures, levels, args.passages)
    failed = sum(row["failed"] for s in figures["systems"].values() for row in s.values())
    print(f"failed or lost requests, all systems and levels: {failed}")
    for name, rho in agree.items():
        print(f"Spearman of ours vs {name} on request 0: {rho:.4f}")
    figures["spearman_vs_ours"] = agree
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


INFO: dict = {}


def describe(servers: dict, args) -> None:
    """One line per system: what it runs (ours: its /info, precision chosen and why)."""
    import httpx

    for name, s in servers.items():
        if name.startswith("ours"):
            info = httpx.get(s.url + "/info").json()
            INFO[name] = info
            line = (f"{info['precision']} on {info['backend']}: {info['dtype']} "
                    f"({info['precision_reason']})")  # fmt: skip
        elif name == "naive":
            line = "FastAPI + sentence-transformers CrossEncoder.predict per request, fp32"
        elif name.startswith("infinity-onnx"):
            line = "infinity_emb v2 --engine optimum (ONNX Runtime, CPU)" + (
                ", dynamic int8 ONNX (optimum-cli onnxruntime quantize --avx512_vnni)"
                if name.endswith("int8") else ", fp32 ONNX (optimum-cli export onnx)"
            )  # fmt: skip
        else:
            dtype = "bfloat16" if name == "infinity-bf16" else args.infinity_dtype
            line = f"infinity_emb v2 --engine torch --dtype {dtype}, CPU"
        INFO.setdefault(name, line)
        print(f"{name}: {line}", flush=True)


def report_ratios(figures: dict, levels: list[int], passages: int) -> None:
    systems = figures["systems"]
    top = max(levels)
    peers = [n for n in systems if n.startswith("infinity") or n == "naive"]
    best_inf = max((n for n in peers if n.startswith("infinity")), default=None,
                   key=lambda n: systems[n][top]["pairs_per_s"])  # fmt: skip
    for mine in (n for n in systems if n.startswith("ours")):
        for name in peers:
            ratio = systems[mine][top]["pairs_per_s"] / systems[name][top]["pairs_per_s"]
            figures[f"{mine}_over_{name}_{top}"] = ratio
            note = "  (target >= 1.5x: the fastest Infinity)" if name == best_inf else ""
            print(f"{mine} / {name} pairs/s at {top} clients: {ratio:.2f}x{note}")
    ours = systems.get("ours")
    if ours and 1 in ours and 8 in ours:
        r = ours[8]["p99"] / ours[1]["p50"]
        gain = ours[8]["pairs_per_s"] / ours[1]["pairs_per_s"]
        figures["ours_p99_8_over_p50_1"] = r
        figures["ours_throughput_8_over_1"] = gain
        wait = 8 * passages / ours[8]["pairs_per_s"]
        print(f"ours p99 at 8 clients / p50 at 1 client: {r:.2f} (target <= 3).")
        print(f"  Little's law: 8 closed-loop clients of {passages} pairs at X(8) pairs/s wait "
              f"8 x {passages} / X(8) = {wait:.2f} s on average, so p99(8) / p50(1) >= "
              f"8 X(1) / X(8); <= 3 needs X(8) >= 2.67 X(1). Measured X(8) / X(1) = {gain:.2f} "
              "(batching across requests adds little on a compute-bound CPU whose single "
              "request already fills its batches).")  # fmt: skip


class hold:  # noqa: N801 (a context manager, used as a statement)
    """``flock`` ``path`` for one phase (no-op without a path); prints the wait and the hold,
    and the load average when taken."""

    def __init__(self, path: str | None, what: str):
        self.path, self.what, self.fh, self.entered = path, what, None, False
        self.keep = False
        self.figures: dict = {"phase": what}

    def __enter__(self) -> dict:
        if self.entered:  # held already (the start-up's hold, kept for round 1)
            return self.figures
        self.entered = True
        if self.path:
            import fcntl

            t = time.perf_counter()
            self.fh = open(self.path, "a")  # noqa: SIM115 (closed in __exit__)
            fcntl.flock(self.fh, fcntl.LOCK_EX)
            self.figures["lock_wait_s"] = round(time.perf_counter() - t, 1)
        self.figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
        self.start = time.perf_counter()
        waited = f"lock taken after {self.figures['lock_wait_s']} s, " if self.fh else ""
        print(f"[{self.what}: {waited}load average {self.figures['load_average']}]", flush=True)
        return self.figures

    def __exit__(self, *exc) -> None:
        if self.keep:  # one more round under this hold
            self.keep = False
            return
        if "held_s" in self.figures:
            return
        self.figures["held_s"] = round(time.perf_counter() - self.start, 1)
        if self.fh is not None:
            self.fh.close()  # releases the lock
        print(f"[{self.what}: {self.figures['held_s']} s]", flush=True)


if __name__ == "__main__":
    sys.exit(main())
