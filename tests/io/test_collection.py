"""Tokenized folders: what preprocess writes loads with ``datasets.load_from_disk`` and equals
our reader row for row; folders RetroMAE's preprocess writes (``save_to_disk``) and the
earlier ``data.parquet`` folders read the same."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.retromae import retromae_preprocess
from transformers import AutoTokenizer

from cross_encoder.io import InputError
from cross_encoder.io import collection as coll
from cross_encoder.io.collection import CollectionWriter, TokenizedCollection

ROWS = {"a": [5, 6, 7], "b": [], "c": [8], "d": [9, 10, 11, 12], "e": [13, 14]}


def write(folder, rows=ROWS, batch=2):
    w = CollectionWriter(folder)
    items = list(rows.items())
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        w.write([k for k, _ in chunk], [v for _, v in chunk])
    w.close()
    return folder


def as_rows(c: TokenizedCollection) -> dict[str, list[int]]:
    return {i: c.tokens(i) for i in c.ids}


def assert_same_as_datasets(folder) -> None:
    """``datasets.load_from_disk`` and our reader agree on every row, in order."""
    ds = datasets.load_from_disk(str(folder))
    ours = TokenizedCollection.load(folder)
    assert ds.column_names == ["id", "input_ids"]
    assert ds.features["input_ids"].feature.dtype == "int32"
    assert ds["id"] == ours.ids
    assert ds["input_ids"] == [ours.tokens(i) for i in ours.ids]


def test_written_folder_is_datasets_layout_and_loads(tmp_path):
    folder = write(tmp_path / "c")
    names = sorted(p.name for p in folder.iterdir())
    assert names == [coll.ARROW_FILE, "dataset_info.json", "mapping_id.txt", "state.json"]
    info = json.loads((folder / "dataset_info.json").read_text())
    # the form datasets==1.18.3 (RetroMAE's pin) reads; "List" (datasets >= 4) it cannot
    assert info["features"]["input_ids"]["_type"] == "Sequence"
    assert json.loads((folder / "state.json").read_text())["_data_files"] == [
        {"filename": coll.ARROW_FILE}
    ]
    assert as_rows(TokenizedCollection.load(folder)) == ROWS
    assert_same_as_datasets(folder)
    assert (folder / "mapping_id.txt").read_text().splitlines()[:2] == ["a\t0", "b\t1"]


def test_token_ids_stay_memory_mapped(tmp_path):
    folder = write(tmp_path / "c")
    before = pa.total_allocated_bytes()
    c = TokenizedCollection.load(folder)
    assert pa.total_allocated_bytes() == before  # nothing copied into Arrow's memory
    assert c.values.dtype == np.int32 and not c.values.flags.writeable  # a view of the map
    assert c.offsets.tolist() == [0, 3, 3, 4, 8, 10]


def test_same_bytes_for_the_same_input(tmp_path):
    a, b = write(tmp_path / "a"), write(tmp_path / "b", batch=3)
    for name in (coll.ARROW_FILE, "state.json", "dataset_info.json", "mapping_id.txt"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_more_tokens_than_one_batch_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(coll, "MAX_BATCH_TOKENS", 4)
    folder = write(tmp_path / "c")
    with pa.ipc.open_stream(pa.memory_map(str(folder / coll.ARROW_FILE))) as r:
        sizes = [b.num_rows for b in r]
    assert sizes == [3, 1, 1]  # a+b+c = 4 tokens, d = 4, e = 2
    assert as_rows(TokenizedCollection.load(folder)) == ROWS
    assert_same_as_datasets(folder)


def test_empty_collection(tmp_path):
    folder = write(tmp_path / "c", rows={})
    assert len(TokenizedCollection.load(folder)) == 0
    assert len(datasets.load_from_disk(str(folder))) == 0


def test_parquet_folder_of_earlier_versions_reads_the_same(tmp_path):
    """What CollectionWriter wrote before: data.parquet (zstd) + mapping_id.txt."""
    old = tmp_path / "old"
    old.mkdir()
    schema = pa.schema([("id", pa.string()), ("input_ids", pa.list_(pa.int32()))])
    table = pa.table({"id": list(ROWS), "input_ids": list(ROWS.values())}, schema=schema)
    pq.write_table(table, old / "data.parquet", compression="zstd", row_group_size=2)
    (old / "mapping_id.txt").write_text("".join(f"{k}\t{r}\n" for r, k in enumerate(ROWS)))
    new = write(tmp_path / "new")
    for path in (old, old / "data.parquet"):
        c = TokenizedCollection.load(path)
        ref = TokenizedCollection.load(new)
        assert c.ids == ref.ids
        assert c.offsets.tolist() == ref.offsets.tolist()
        assert c.values.tolist() == ref.values.tolist()


def test_folder_written_by_retromae_preprocess_reads(tmp_path, tiny_data, tiny_model_dir):
    """RetroMAE's preprocess (datasets' load_dataset + map + save_to_disk): the same token ids
    as ours when both tokenize the same text (no titles)."""
    from cross_encoder import preprocess

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    theirs = retromae_preprocess(tok, tiny_data, tmp_path / "retromae", max_len=32)
    ours = tmp_path / "ours"
    argv = ["--tokenizer_name", str(tiny_model_dir), "--max_seq_length", "32"]
    argv += ["--output_dir", str(ours), "--corpus_file", str(tiny_data["corpus"])]
    argv += ["--train_query_file", str(tiny_data["train_queries"])]
    argv += ["--dev_query_file", str(tiny_data["dev_queries"])]
    assert preprocess.main([*argv, "--train_qrels", str(tiny_data["train_qrels"])]) == 0
    for name in ("corpus", "train_query", "dev_query"):
        assert (theirs / name / "state.json").exists()
        assert not (theirs / name / "tokenizer_identity.json").exists()
        a, b = TokenizedCollection.load(theirs / name), TokenizedCollection.load(ours / name)
        assert a.ids == b.ids and as_rows(a) == as_rows(b)
        assert_same_as_datasets(ours / name)
    assert (theirs / "train_qrels.txt").read_text() == (ours / "train_qrels.txt").read_text()


def test_int64_and_several_arrow_files(tmp_path):
    """datasets may write int64 ids and several shards (``data-0000N-of-0000M.arrow``)."""
    folder = tmp_path / "c"
    features = datasets.Features(
        {"id": datasets.Value("string"), "input_ids": datasets.List(datasets.Value("int64"))}
    )
    rows = {"id": list(ROWS), "input_ids": list(ROWS.values())}
    ds = datasets.Dataset.from_dict(rows, features=features)
    ds.save_to_disk(str(folder), num_shards=2)
    assert len(json.loads((folder / "state.json").read_text())["_data_files"]) == 2
    assert as_rows(TokenizedCollection.load(folder)) == ROWS


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda f: (f / "state.json").write_text("{}"), "no '_data_files' list"),
        (lambda f: (f / coll.ARROW_FILE).unlink(), r"no such file \(listed in state.json\)"),
        (lambda f: (f / coll.ARROW_FILE).write_bytes(b"not arrow"), "not an Arrow stream"),
        (lambda f: (f / "state.json").unlink(), "not a tokenized folder"),
    ],
)
def test_broken_folder_is_one_clear_error(tmp_path, damage, message):
    folder = write(tmp_path / "c")
    damage(folder)
    with pytest.raises(InputError, match=message):
        TokenizedCollection.load(folder)


def test_missing_column_is_named(tmp_path):
    folder = tmp_path / "c"
    datasets.Dataset.from_dict({"id": ["a"], "text": ["x"]}).save_to_disk(str(folder))
    with pytest.raises(InputError, match="no column 'input_ids'"):
        TokenizedCollection.load(folder)


def test_batch_bounds():
    offsets = np.array([0, 3, 3, 4, 8, 10])
    assert list(coll._batch_bounds(offsets, 100)) == [(0, 5)]
    assert list(coll._batch_bounds(offsets, 2)) == [(0, 1), (1, 3), (3, 4), (4, 5)]
    assert list(coll._batch_bounds(np.array([0]), 5)) == [(0, 0)]
