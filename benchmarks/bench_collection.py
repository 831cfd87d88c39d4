"""Tokenized folders: the datasets layout preprocess writes now vs the data.parquet folders of
earlier versions: size on disk, write time, and what loading costs (wall, peak RSS, and the
resident memory of the token ids once every page has been read).

    python benchmarks/bench_collection.py /tmp/bench_coll --passages 1000000

Token ids are random (lengths 20-120, MS MARCO-like, ids < 30522), so Parquet's compression
sees noise rather than text: its size here is an upper bound. Each load runs in a fresh
process (``/proc/self/status``: VmHWM, RssAnon, RssFile), so the figures do not mix.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LOAD = """
import json, sys, time
from cross_encoder.io.collection import TokenizedCollection
def status():
    f = dict(l.split(":", 1) for l in open("/proc/self/status"))
    return {k: int(f[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile")}
before = status()
t = time.perf_counter()
c = TokenizedCollection.load(sys.argv[1])
wall = time.perf_counter() - t
total = int(c.values.sum(dtype="int64"))  # touch every token id
after = status()
print(json.dumps({"wall_s": wall, "before": before, "after": after, "tokens": len(c.values)}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir")
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import pyarrow as pa
    import pyarrow.parquet as pq

    from cross_encoder.io.collection import CollectionWriter, batched

    rng = np.random.default_rng(args.seed)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    lengths = rng.integers(20, 121, args.passages)
    ids = [f"p{i}" for i in range(args.passages)]

    def rows():
        for i, n in zip(ids, lengths, strict=True):
            yield i, rng.integers(1000, 30522, n, dtype=np.int32).tolist()

    t = time.perf_counter()
    w = CollectionWriter(work / "arrow")
    for chunk in batched(rows(), 10_000):
        w.write([i for i, _ in chunk], [x for _, x in chunk])
    w.close()
    arrow_s = time.perf_counter() - t
    schema = pa.schema([("id", pa.string()), ("input_ids", pa.list_(pa.int32()))])
    (work / "parquet").mkdir(exist_ok=True)
    rng = np.random.default_rng(args.seed)  # the same token ids again
    rng.integers(20, 121, args.passages)
    t = time.perf_counter()
    with pq.ParquetWriter(work / "parquet" / "data.parquet", schema, compression="zstd") as pw:
        for chunk in batched(rows(), 10_000):
            pw.write_batch(
                pa.record_batch(
                    [pa.array([i for i, _ in chunk]), pa.array([x for _, x in chunk])],
                    schema=schema,
                )
            )
    parquet_s = time.perf_counter() - t
    tokens = int(lengths.sum())
    print(f"{args.passages:,} passages, {tokens:,} tokens ({tokens / args.passages:.1f}/passage)")
    for name, secs in (("arrow", arrow_s), ("parquet", parquet_s)):
        size = sum(f.stat().st_size for f in (work / name).iterdir())
        out = subprocess.run(
            [sys.executable, "-c", LOAD, str(work / name)], capture_output=True, text=True
        )
        r = json.loads(out.stdout)
        a, b = r["after"], r["before"]
        print(
            f"{name:8s} disk {size / 2**20:7.1f} MiB ({size / tokens:.2f} B/token)  "
            f"write {secs:6.1f} s  load {r['wall_s']:5.2f} s  "
            f"peak RSS +{a['VmHWM'] - b['VmHWM']:6.1f} MiB  "
            f"anon +{a['RssAnon'] - b['RssAnon']:6.1f} MiB  "
            f"file-backed +{a['RssFile'] - b['RssFile']:6.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
