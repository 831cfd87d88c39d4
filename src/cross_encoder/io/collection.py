"""Tokenized collections on disk: the folder ``datasets.Dataset.save_to_disk`` writes (what
RetroMAE's ``preprocess.py`` writes and its code reads with ``datasets.load_from_disk``), plus
``mapping_id.txt`` (``orig_id\\trow_index``).

A folder written by :class:`CollectionWriter` (``cross_encoder.preprocess``) holds:

* ``data-00000-of-00001.arrow``: an Arrow IPC stream with the columns ``id`` (string) and
  ``input_ids`` (list of int32), one row per passage or query in input order: RetroMAE's
  columns, dtypes and row order;
* ``dataset_info.json`` and ``state.json``: what ``load_from_disk`` reads first. The features
  are recorded as ``Sequence(Value("int32"))``, the form ``datasets`` 1.x writes: the
  ``datasets==1.18.3`` RetroMAE pins cannot read the ``List`` form ``datasets`` >= 4 writes,
  and current ``datasets`` reads both (``tests/io/test_collection.py`` loads our folders with the
  installed ``datasets``, ``benchmarks/check_datasets_1183.py`` with 1.18.3);
* ``mapping_id.txt``, and ``tokenizer_identity.json`` (written by preprocess).

:meth:`TokenizedCollection.load` reads that folder with pyarrow alone: the stream file is
memory-mapped and its token ids are used in place (one int32 per token, shared by every
process that maps it). It also reads what RetroMAE's own preprocess wrote (any ``datasets``
version: ``state.json`` names the data files) and the ``data.parquet`` folders of earlier
versions of this package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cross_encoder.io import InputError, PathLike, atomic_write, check_overlap, iter_lines
from cross_encoder.io.readers import read_json

ARROW_FILE = "data-00000-of-00001.arrow"
INFO_FILE = "dataset_info.json"
STATE_FILE = "state.json"
PARQUET_FILE = "data.parquet"  # what versions before the datasets layout wrote
MAPPING_FILE = "mapping_id.txt"
# The features as datasets 1.x records them (datasets >= 4 reads this form too).
FEATURES = {
    "id": {"dtype": "string", "id": None, "_type": "Value"},
    "input_ids": {
        "feature": {"dtype": "int32", "id": None, "_type": "Value"},
        "length": -1,
        "id": None,
        "_type": "Sequence",
    },
}
SCHEMA = pa.schema(
    [("id", pa.string()), ("input_ids", pa.list_(pa.int32()))],
    metadata={"huggingface": json.dumps({"info": {"features": FEATURES}})},
)
# One record batch per file keeps the token ids one memory-mapped array; a list column has
# int32 offsets, so a collection of more tokens than this is split into several batches.
MAX_BATCH_TOKENS = 2**31 - 1


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
        """The token ids of one id."""
        r = self.row[key]
        return self.values[self.offsets[r] : self.offsets[r + 1]].tolist()

    def lengths(self) -> np.ndarray:
        """Token count of every row, in row order."""
        return np.diff(self.offsets)

    @classmethod
    def load(cls, path: PathLike, id_file: PathLike | None = None) -> TokenizedCollection:
        """Load a tokenized folder: written by preprocess, by ``datasets``' ``save_to_disk``
        (RetroMAE's preprocess), or an earlier ``data.parquet`` folder (or that file)."""
        table, data = read_table(path)
        ids = [str(x) for x in table.column("id").to_pylist()]
        offsets, values = _flat(table.column("input_ids"), data)
        coll = cls(ids, offsets, values, str(path))
        p = Path(path)
        if id_file is not None and Path(id_file).exists():
            coll._check_mapping(id_file, data)
        elif p.is_dir() and (p / MAPPING_FILE).exists():
            coll._check_mapping(p / MAPPING_FILE, data)
        if len(coll.row) != len(ids):
            raise InputError(data, "duplicate ids in the tokenized collection")
        return coll

    def _check_mapping(self, id_file: PathLike, data: PathLike) -> None:
        for lineno, line in iter_lines(id_file):
            cols = line.split("\t")
            if len(cols) != 2:
                raise InputError(id_file, "expected 'orig_id<TAB>row_index'", lineno)
            orig, row = cols
            if not row.isdigit() or int(row) >= len(self.ids) or self.ids[int(row)] != orig:
                raise InputError(
                    id_file,
                    f"mapping {orig!r} -> {row} does not match {Path(data).name}; "
                    "re-run preprocess",
                    lineno,
                )


def read_table(path: PathLike) -> tuple[pa.Table, Path]:
    """The ``id`` and ``input_ids`` columns of a tokenized folder (or of its ``data.parquet``
    or one ``.arrow`` file), memory-mapped where the format allows; and the file or folder to
    name in errors."""
    p = Path(path)
    if p.is_dir() and (p / STATE_FILE).exists():
        state = read_json(p / STATE_FILE)
        files = state.get("_data_files") if isinstance(state, dict) else None
        if not files or not all(isinstance(f, dict) and "filename" in f for f in files):
            raise InputError(p / STATE_FILE, "no '_data_files' list (not datasets' save_to_disk)")
        tables = [_read_arrow(p / f["filename"]) for f in files]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        data = p
    elif p.is_dir() and (p / PARQUET_FILE).exists() or p.is_file() and p.suffix == ".parquet":
        data = p / PARQUET_FILE if p.is_dir() else p
        table = _columns(pq.read_table(data), data)
    elif p.is_file() and p.suffix == ".arrow":
        table, data = _read_arrow(p), p
    else:
        raise InputError(
            path,
            f"not a tokenized folder (no {STATE_FILE} of datasets' save_to_disk, nor "
            f"{PARQUET_FILE}); run `python -m cross_encoder.preprocess` first",
        )
    return table, data


def _read_arrow(path: Path) -> pa.Table:
    """One Arrow IPC stream file (what ``datasets`` writes), memory-mapped."""
    if not path.exists():
        raise InputError(path, f"no such file (listed in {STATE_FILE})")
    try:
        with pa.ipc.open_stream(pa.memory_map(str(path))) as reader:
            table = reader.read_all()
    except pa.ArrowInvalid as e:
        raise InputError(path, f"not an Arrow stream file ({e})") from None
    return _columns(table, path)


def _columns(table: pa.Table, path: PathLike) -> pa.Table:
    missing = [c for c in ("id", "input_ids") if c not in table.column_names]
    if missing:
        raise InputError(
            path,
            f"no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(table.column_names)}); expected RetroMAE's 'id' and 'input_ids'",
        )
    return table.select(["id", "input_ids"])


def _flat(column: pa.ChunkedArray, path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Row offsets (int64) and token ids (int32) of a list column: the token ids stay in the
    memory map when the column is one chunk of int32 (what preprocess writes)."""
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        raise InputError(path, f"column 'input_ids' is {column.type}, not a list of token ids")
    if not pa.types.is_integer(column.type.value_type):
        raise InputError(path, f"column 'input_ids' holds {column.type.value_type}, not integers")
    if column.null_count:
        raise InputError(path, f"column 'input_ids' has {column.null_count} empty (null) rows")
    arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if len(arr) == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int32)
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets -= offsets[0]
    if values.type != pa.int32():
        try:
            values = values.cast(pa.int32())
        except pa.ArrowInvalid:
            raise InputError(path, "token ids out of the int32 range") from None
    return offsets, values.to_numpy(zero_copy_only=False)


class CollectionWriter:
    """Stream ``(id, input_ids)`` batches into a collection folder that ``datasets``
    loads, in bounded memory: token ids go to a scratch file as they come, and
    :meth:`close` writes them as one Arrow record batch straight from that file."""

    def __init__(self, out_dir: PathLike):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._scratch = self.out_dir / ".input_ids.tmp"
        self._values = open(self._scratch, "wb")  # noqa: SIM115 (closed in close/abort)
        self._lengths: list[np.ndarray] = []
        self._ids: list[str] = []

    def write(self, ids: list[str], input_ids: list[list[int]]) -> None:
        """Append rows (ids and their token ids) to the folder being written."""
        if len(ids) != len(input_ids):
            raise ValueError(f"{len(ids)} ids but {len(input_ids)} token lists")
        arr = pa.array(input_ids, pa.list_(pa.int32()))
        offsets = arr.offsets.to_numpy()
        self._lengths.append(np.diff(offsets).astype(np.int64))
        self._values.write(arr.values.to_numpy().tobytes())
        self._ids.extend(ids)

    @property
    def ids(self) -> list[str]:
        """Ids written so far, in row order."""
        return self._ids

    def close(self) -> None:
        """Finish: the Arrow file, ``dataset_info.json`` and ``mapping_id.txt`` first, then
        ``state.json`` as the last step, so a folder is complete exactly when it has
        ``state.json``."""
        self._values.close()
        try:
            self._write_arrow(self.out_dir / ARROW_FILE)
        finally:
            self._scratch.unlink(missing_ok=True)
        with atomic_write(self.out_dir / INFO_FILE) as f:
            json.dump(dataset_info(), f, indent=2)
        with atomic_write(self.out_dir / MAPPING_FILE) as f:
            for row, i in enumerate(self._ids):
                f.write(f"{i}\t{row}\n")
        with atomic_write(self.out_dir / STATE_FILE) as f:
            json.dump(dataset_state(_fingerprint(self.out_dir / ARROW_FILE)), f, indent=2)

    def abort(self) -> None:
        """Drop what was written so far (nothing is left behind)."""
        self._values.close()
        self._scratch.unlink(missing_ok=True)

    def _write_arrow(self, path: Path) -> None:
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        # The token ids are read from the scratch file through a memory map: the batch is
        # built on it without a copy, and writing it streams page by page.
        values = np.memmap(self._scratch, np.int32, "r") if total else np.zeros(0, np.int32)
        with atomic_write(path, "wb") as f, pa.ipc.new_stream(f, SCHEMA) as stream:
            for lo, hi in _batch_bounds(offsets, MAX_BATCH_TOKENS):
                start, end = int(offsets[lo]), int(offsets[hi])
                batch_offsets = pa.array(offsets[lo : hi + 1] - start, pa.int32())
                tokens = pa.Array.from_buffers(
                    pa.int32(), end - start, [None, pa.py_buffer(values[start:end])]
                )
                stream.write_batch(
                    pa.record_batch(
                        [
                            pa.array(self._ids[lo:hi], pa.string()),
                            pa.ListArray.from_arrays(batch_offsets, tokens),
                        ],
                        schema=SCHEMA,
                    )
                )
        del values


def _batch_bounds(offsets: np.ndarray, max_tokens: int) -> Iterator[tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of at most ``max_tokens`` tokens each (one range when the
    collection fits; a single longer row gets a range of its own). No range for no rows,
    but one empty batch so that the stream has one."""
    n = len(offsets) - 1
    if n == 0:
        yield 0, 0
        return
    lo = 0
    while lo < n:
        hi = int(np.searchsorted(offsets, offsets[lo] + max_tokens, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        yield lo, hi
        lo = hi


def _fingerprint(path: Path) -> str:
    """``datasets`` wants a fingerprint in ``state.json``: a hash of the data, so that the
    same input gives the same bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def dataset_info() -> dict:
    """``dataset_info.json`` as ``datasets`` 1.x writes it (later versions read it)."""
    return {
        "builder_name": None,
        "citation": "",
        "config_name": None,
        "dataset_size": None,
        "description": "Tokenized by cross_encoder.preprocess (RetroMAE's preprocess layout).",
        "download_checksums": None,
        "download_size": None,
        "features": FEATURES,
        "homepage": "",
        "license": "",
        "post_processed": None,
        "post_processing_size": None,
        "size_in_bytes": None,
        "splits": None,
        "supervised_keys": None,
        "task_templates": None,
        "version": None,
    }


def dataset_state(fingerprint: str) -> dict:
    """``state.json`` as ``datasets`` 1.x writes it (later versions read it)."""
    return {
        "_data_files": [{"filename": ARROW_FILE}],
        "_fingerprint": fingerprint,
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_indexes": {},
        "_output_all_columns": False,
        "_split": None,
    }


def batched(it: Iterable, n: int) -> Iterator[list]:
    """Lists of ``n`` items of ``it`` (the last one shorter)."""
    batch: list = []
    for x in it:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
