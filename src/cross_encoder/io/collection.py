"""Tokenized collections on disk: a folder with ``data.parquet`` (``id``, ``input_ids``) and
``mapping_id.txt`` (``orig_id\\trow_index``), as written by :mod:`cross_encoder.preprocess`.

Loading keeps the token ids as one flat int32 array plus offsets, so a corpus of millions of
passages costs a few bytes per token and a lookup is a slice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cross_encoder.io import InputError, PathLike, atomic_write, check_overlap, iter_lines

DATA_FILE = "data.parquet"
MAPPING_FILE = "mapping_id.txt"
SCHEMA = pa.schema([("id", pa.string()), ("input_ids", pa.list_(pa.int32()))])


class TokenizedCollection:
    """Token ids of a corpus or query set, addressed by original id."""

    def __init__(self, ids: list[str], offsets: np.ndarray, values: np.ndarray, path: str = ""):
        self.ids = ids
        self.offsets = offsets
        self.values = values
        self.path = path
        self.row = {i: r for r, i in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key: str) -> bool:
        return key in self.row

    def check_ids(self, path: PathLike, ids: Iterable[str], what: str) -> set[str]:
        """The ids of ``path`` (``what``: query or passage) that are not in this collection:
        an error if none is, a warning if some are not (:func:`cross_encoder.io.check_overlap`)."""
        return check_overlap(
            path,
            ids,
            self,
            none=f"none of its {what} ids are in {self.path} (e.g. {{example}}); "
            "check that the files belong together",
            some=f"{{missing}} {what} ids are not in {self.path}; skipped",
        )

    def tokens(self, key: str) -> list[int]:
        r = self.row[key]
        return self.values[self.offsets[r] : self.offsets[r + 1]].tolist()

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def load(cls, path: PathLike, id_file: PathLike | None = None) -> TokenizedCollection:
        """Load a folder written by preprocess (or its ``data.parquet``)."""
        p = Path(path)
        data = p / DATA_FILE if p.is_dir() else p
        if not data.exists():
            raise InputError(
                path, f"no {DATA_FILE} here; run `python -m cross_encoder.preprocess` first"
            )
        table = pq.read_table(data, columns=["id", "input_ids"])
        ids = [str(x) for x in table.column("id").to_pylist()]
        col = table.column("input_ids").combine_chunks()
        offsets = col.offsets.to_numpy().astype(np.int64)
        values = col.values.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        if offsets[0] != 0:
            offsets = offsets - offsets[0]
            values = values[: offsets[-1]]
        coll = cls(ids, offsets, values, str(path))
        if id_file is not None and Path(id_file).exists():
            coll._check_mapping(id_file)
        elif p.is_dir() and (p / MAPPING_FILE).exists():
            coll._check_mapping(p / MAPPING_FILE)
        if len(coll.row) != len(ids):
            raise InputError(data, "duplicate ids in the tokenized collection")
        return coll

    def _check_mapping(self, id_file: PathLike) -> None:
        for lineno, line in iter_lines(id_file):
            cols = line.split("\t")
            if len(cols) != 2:
                raise InputError(id_file, "expected 'orig_id<TAB>row_index'", lineno)
            orig, row = cols
            if not row.isdigit() or int(row) >= len(self.ids) or self.ids[int(row)] != orig:
                raise InputError(
                    id_file,
                    f"mapping {orig!r} -> {row} does not match {DATA_FILE}; re-run preprocess",
                    lineno,
                )


class CollectionWriter:
    """Stream ``(id, input_ids)`` batches into a collection folder, atomically."""

    def __init__(self, out_dir: PathLike):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = self.out_dir / f".{DATA_FILE}.tmp"
        self._writer = pq.ParquetWriter(self._tmp, SCHEMA, compression="zstd")
        self._ids: list[str] = []

    def write(self, ids: list[str], input_ids: list[list[int]]) -> None:
        batch = pa.record_batch(
            [pa.array(ids, pa.string()), pa.array(input_ids, pa.list_(pa.int32()))],
            schema=SCHEMA,
        )
        self._writer.write_batch(batch)
        self._ids.extend(ids)

    @property
    def ids(self) -> list[str]:
        """Ids written so far, in row order."""
        return self._ids

    def close(self) -> None:
        """Finish: ``mapping_id.txt`` first, then ``data.parquet`` is renamed into place as the
        last step, so a folder is complete exactly when it has ``data.parquet``."""
        self._writer.close()
        with atomic_write(self.out_dir / MAPPING_FILE) as f:
            for row, i in enumerate(self._ids):
                f.write(f"{i}\t{row}\n")
        self._tmp.replace(self.out_dir / DATA_FILE)

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)


def batched(it: Iterable, n: int) -> Iterator[list]:
    batch: list = []
    for x in it:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
