"""Gather the score files of a sharded rerank (``cross_encoder.run --prediction_shard i/k``):
concatenate them in shard order into one file, atomically. Each shard scored a contiguous
share of the ranking's chunks, so the result is the one-job file byte for byte.

    python -m cross_encoder.reranking.shards --output dev.scores.tsv part1 part2 ...
"""

from __future__ import annotations

import argparse

from cross_encoder.io import InputError, atomic_write, cli, setup_logging


def gather(parts: list[str], output: str) -> int:
    """Concatenate ``parts`` into ``output``; returns the number of lines."""
    n = 0
    with atomic_write(output, "wb") as out:
        for part in parts:
            try:
                with open(part, "rb") as f:
                    data_end = b""
                    for block in iter(lambda f=f: f.read(1 << 20), b""):
                        n += block.count(b"\n")
                        data_end = block[-1:]
                        out.write(block)
            except FileNotFoundError:
                raise InputError(part, "no such file") from None
            if data_end not in (b"", b"\n"):
                raise InputError(part, "does not end with a newline: a truncated shard?")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.reranking.shards", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--output", required=True, help="the gathered qid\\tpid\\tscore file")
    p.add_argument("parts", nargs="+", help="the shards' score files, in shard order")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    n = gather(args.parts, args.output)
    print(f"gathered {n} scores from {len(args.parts)} shards into {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
