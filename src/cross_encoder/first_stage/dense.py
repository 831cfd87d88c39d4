"""Dense first stage: a bi-encoder encodes the corpus once and retrieves by cosine similarity.

    python -m cross_encoder.first_stage.dense encode --model all-MiniLM-L6-v2 \\
        --corpus_file corpus.tsv --output_dir dense_index
    python -m cross_encoder.first_stage.dense search --model all-MiniLM-L6-v2 --index_dir
    dense_index \\
        --query_file dev.query.txt --output_ranking dev.dense.tsv --depth 1000

Any sentence-transformers-style model folder works (mean pooling over the last hidden
state, L2-normalised, as all-MiniLM-L6-v2 is trained; ``--pooling cls`` for CLS models).
``--precision auto`` encodes with bf16 weights on a CPU where bf16 is fast (AMX, see
:mod:`cross_encoder.hardware`), in fp32 elsewhere (GPUs included, as before); pooling and
normalisation run in float32 either way.
The index is ``embeddings.npy`` (float32, one row per passage) + ``pids.txt``. Memory stays
bounded at any corpus size (8.8M MS MARCO passages x 768 dims is 27 GB of float32): encode
streams the corpus ``--chunk_passages`` at a time and writes each chunk's rows straight into
the memory-mapped ``.npy`` (only the chunk's texts and the pids are held); search maps the
index read-only and runs an exact matrix product with a running top-k over corpus chunks,
on the GPU when there is one (``benchmarks/bench_dense_memory.py`` measures both).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cross_encoder.io import (
    InputError,
    atomic_dir,
    cli,
    iter_corpus,
    read_queries,
    setup_logging,
    write_ranking,
    write_text,
)

logger = logging.getLogger(__name__)


class BiEncoder:
    """A transformer with mean (or CLS) pooling and L2 normalisation."""

    def __init__(
        self,
        name: str,
        max_len: int = 256,
        pooling: str = "mean",
        device: str | None = None,
        model=None,
        tokenizer=None,
        dtype: torch.dtype = torch.float32,
    ):
        """``dtype``: the weights' dtype. bf16 is for encoding only (a training loop keeps
        float32 weights and autocasts, as :mod:`cross_encoder.distillation.distill` does)."""
        from transformers import AutoModel, AutoTokenizer

        from cross_encoder.modeling import resolve_model

        path = resolve_model(name)
        try:
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
            self.model = model or AutoModel.from_pretrained(path, use_safetensors=True, dtype=dtype)
        except OSError as e:
            raise InputError(name, f"cannot load bi-encoder: {str(e).splitlines()[0]}") from None
        self.max_len = max_len
        self.pooling = pooling
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Normalised embeddings with gradients (for training)."""
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_len,
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(**batch).last_hidden_state.float()  # pool in float32
        if self.pooling == "cls":
            emb = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(emb, dim=-1)

    @torch.inference_mode()
    def encode(
        self, texts: Sequence[str], batch_size: int = 64, desc: str = "encode"
    ) -> np.ndarray:
        """Embeddings of ``texts`` in input order (length-sorted batches), float32."""
        self.model.eval()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc=desc, mininterval=2):
            idx = order[start : start + batch_size]
            out[idx] = self.forward([texts[i] for i in idx]).float().cpu().numpy()
        return out


def passage_texts(corpus_file: str | Path) -> tuple[list[str], list[str]]:
    """Pids and ``title text`` strings of a corpus file, in file order."""
    pids, texts = [], []
    for pid, title, text in iter_corpus(corpus_file):
        pids.append(pid)
        texts.append(f"{title} {text}".strip())
    return pids, texts


def encode_corpus(
    encoder: BiEncoder,
    corpus_file: str | Path,
    index_dir: str | Path,
    batch_size: int = 64,
    chunk_passages: int = 100_000,
) -> int:
    """Encode the corpus into ``index_dir`` (atomically) holding ``chunk_passages`` texts at a
    time: a first pass counts the passages (and checks the file), the second writes each
    chunk's embeddings into the memory-mapped ``embeddings.npy``. Returns the count."""
    n = sum(1 for _ in iter_corpus(corpus_file))
    dim = encoder.model.config.hidden_size
    with atomic_dir(index_dir) as tmp:
        emb = np.lib.format.open_memmap(
            tmp / "embeddings.npy", mode="w+", dtype=np.float32, shape=(n, dim)
        )
        done = 0
        with open(tmp / "pids.txt", "w", encoding="utf-8") as pid_file:
            chunk: list[str] = []
            for pid, title, text in iter_corpus(corpus_file):
                pid_file.write(pid + "\n")
                chunk.append(f"{title} {text}".strip())
                if len(chunk) == chunk_passages:
                    emb[done : done + len(chunk)] = encoder.encode(chunk, batch_size)
                    done += len(chunk)
                    chunk = []
            if chunk:
                emb[done : done + len(chunk)] = encoder.encode(chunk, batch_size)
                done += len(chunk)
        emb.flush()
        del emb
    return done


def save_index(index_dir: str | Path, embeddings: np.ndarray, pids: list[str]) -> None:
    """Save atomically (:func:`cross_encoder.io.atomic_dir`)."""
    with atomic_dir(index_dir) as tmp:
        np.save(tmp / "embeddings.npy", embeddings)
        write_text(tmp / "pids.txt", "\n".join(pids) + "\n")


def load_index(index_dir: str | Path) -> tuple[np.ndarray, list[str]]:
    """A dense index folder: the memory-mapped embeddings and their pids."""
    d = Path(index_dir)
    if not (d / "embeddings.npy").exists():
        raise InputError(index_dir, "no embeddings.npy here; run `dense encode` first")
    emb = np.load(d / "embeddings.npy", mmap_mode="r")
    pids = (d / "pids.txt").read_text(encoding="utf-8").splitlines()
    if len(pids) != emb.shape[0]:
        raise InputError(index_dir, f"{len(pids)} pids but {emb.shape[0]} embeddings")
    return emb, pids


def top_k(
    queries: np.ndarray, corpus: np.ndarray, k: int, chunk_size: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k: ``(scores, indices)`` of shape ``(n_queries, k)``, best
    first, with a running merge over corpus chunks."""
    k = min(k, corpus.shape[0])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(device)
    best_s = torch.full((q.shape[0], 0), -float("inf"), device=device)
    best_i = torch.zeros((q.shape[0], 0), dtype=torch.long, device=device)
    for start in range(0, corpus.shape[0], chunk_size):
        c = torch.from_numpy(np.ascontiguousarray(corpus[start : start + chunk_size], np.float32))
        s = q @ c.to(device).T
        kk = min(k, s.shape[1])
        cs, ci = torch.topk(s, kk, dim=1)
        best_s = torch.cat([best_s, cs], dim=1)
        best_i = torch.cat([best_i, ci + start], dim=1)
        best_s, pos = torch.topk(best_s, min(k, best_s.shape[1]), dim=1)
        best_i = torch.gather(best_i, 1, pos)
    return best_s.cpu().numpy(), best_i.cpu().numpy()


def search(
    encoder: BiEncoder,
    embeddings: np.ndarray,
    pids: list[str],
    queries: dict[str, str],
    depth: int,
    batch_size: int = 64,
) -> dict[str, list[tuple[str, float]]]:
    """Exact inner-product top-``depth`` of each query: ``qid -> [(pid, score), ...]``."""
    qids = list(queries)
    q_emb = encoder.encode([queries[q] for q in qids], batch_size, desc="encode queries")
    out: dict[str, list[tuple[str, float]]] = {}
    for start in tqdm(range(0, len(qids), 1024), desc="dense retrieve", mininterval=2):
        scores, idx = top_k(q_emb[start : start + 1024], embeddings, depth)
        for row, qid in enumerate(qids[start : start + 1024]):
            out[qid] = [(pids[i], float(s)) for i, s in zip(idx[row], scores[row], strict=True)]
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.first_stage.dense", description=__doc__
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("encode", "search"):
        s = sub.add_parser(name)
        s.add_argument("--model", default="all-MiniLM-L6-v2", help="bi-encoder name or folder")
        s.add_argument("--max_len", "--max_length", dest="max_len", type=int, default=256)
        s.add_argument("--pooling", choices=["mean", "cls"], default="mean")
        s.add_argument("--batch_size", type=int, default=64)
        s.add_argument("--index_dir", required=True)
        s.add_argument(
            "--precision",
            choices=["auto", "fp32", "bf16"],
            default="auto",
            help="auto: bf16 weights on a CPU where bf16 is fast (AMX), else fp32",
        )
    enc = sub.choices["encode"]
    enc.add_argument("--corpus_file", required=True)
    enc.add_argument(
        "--chunk_passages",
        type=int,
        default=100_000,
        help="passages (texts) held in memory at a time; embeddings go straight to disk",
    )
    srch = sub.choices["search"]
    srch.add_argument("--query_file", required=True)
    srch.add_argument("--output_ranking", required=True)
    srch.add_argument("--depth", type=int, default=1000)
    return p


def encode_dtype(precision: str, device: str | None = None) -> torch.dtype:
    """The weights' dtype for encoding at ``--precision``: ``auto`` is the machine's choice
    (:func:`cross_encoder.hardware.resolve`): on a CPU bf16 where it is fast, on a GPU bf16
    where supported, else fp16. Pooling and normalisation stay float32."""
    from cross_encoder import hardware

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return hardware.torch_dtype(hardware.resolve(precision, device))


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    torch.manual_seed(0)
    dtype = encode_dtype(args.precision)
    if args.command == "encode":
        if args.chunk_passages < 1:
            raise InputError(None, "--chunk_passages must be >= 1")
        encoder = BiEncoder(args.model, args.max_len, args.pooling, dtype=dtype)
        n = encode_corpus(
            encoder, args.corpus_file, args.index_dir, args.batch_size, args.chunk_passages
        )
        logger.info("encoded %d passages -> %s", n, args.index_dir)
        return 0
    if args.depth < 1:
        raise InputError(None, "--depth must be >= 1")
    emb, pids = load_index(args.index_dir)
    queries = read_queries(args.query_file)
    encoder = BiEncoder(args.model, args.max_len, args.pooling, dtype=dtype)
    ranking = search(encoder, emb, pids, queries, args.depth, args.batch_size)
    write_ranking(args.output_ranking, ranking)
    logger.info("retrieved for %d queries -> %s", len(ranking), args.output_ranking)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
