"""Tests for cross_encoder.data.download against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cross_encoder.data import download
from cross_encoder.data.download import BEIR_MD5, DownloadError, download_beir, main

CORPUS = [
    {"_id": "d1", "title": "Cats", "text": "Cats purr when content."},
    {"_id": "d2", "title": "Dogs", "text": "Dogs bark at strangers."},
    {"_id": "d3", "title": "", "text": "Fish swim in water."},
]
QUERIES = [
    {"_id": "q1", "text": "why do cats purr"},
    {"_id": "q2", "text": "do dogs bark"},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _write_zip(path: Path, members: dict[str, str]) -> str:
    """Write a zip with ``members`` (name -> text) and return its md5."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return hashlib.md5(path.read_bytes()).hexdigest()


def _beir_members(name: str) -> dict[str, str]:
    return {
        f"{name}/corpus.jsonl": _jsonl(CORPUS),
        f"{name}/queries.jsonl": _jsonl(QUERIES),
        f"{name}/qrels/test.tsv": QRELS,
    }


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class Server:
    """A file server on 127.0.0.1 that records the paths it was asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        handler = type("Handler", (_Handler,), {"requests": self.requests})
        self._httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/datasets"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def add(self, name: str, members: dict[str, str]) -> str:
        """Serve ``{name}.zip`` with ``members``; return its md5."""
        (self.root / "datasets").mkdir(exist_ok=True)
        return _write_zip(self.root / "datasets" / f"{name}.zip", members)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    srv = Server(root)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def out_parent(tmp_path: Path) -> Path:
    parent = tmp_path / "resources" / "beir"
    parent.mkdir(parents=True)
    return parent


def _assert_clean_failure(
    rc: int, capsys: pytest.CaptureFixture[str], output: Path, *fragments: str
) -> str:
    """Exit 2, one ``error:`` line on stderr, nothing at output, no temp files."""
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert not output.exists()
    assert list(output.parent.iterdir()) == []
    return lines[0]


def test_download_and_extract(server: Server, out_parent: Path, capsys) -> None:
    md5 = server.add("tiny", _beir_members("tiny"))
    output = out_parent / "tiny"
    argv = ["--dataset", "tiny", "--output_dir", str(output), "--base_url", server.url]
    rc = main([*argv, "--md5", md5.upper()])
    assert rc == 0
    assert server.requests == ["/datasets/tiny.zip"]
    assert (output / "corpus.jsonl").read_text() == _jsonl(CORPUS)
    assert (output / "queries.jsonl").read_text() == _jsonl(QUERIES)
    assert (output / "qrels" / "test.tsv").read_text() == QRELS
    assert sorted(p.name for p in out_parent.iterdir()) == ["tiny"]  # no temp leftovers
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(output.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    assert "downloaded tiny" in capsys.readouterr().out


def test_rerun_on_complete_dir_is_noop(server: Server, out_parent: Path, capsys) -> None:
    md5 = server.add("tiny", _beir_members("tiny"))
    output = out_parent / "tiny"
    argv = ["--dataset", "tiny", "--output_dir", str(output), "--md5", md5]
    assert main([*argv, "--base_url", server.url]) == 0
    before = {p: p.stat().st_mtime_ns for p in output.rglob("*")}
    capsys.readouterr()

    assert main([*argv, "--base_url", server.url]) == 0
    assert server.requests == ["/datasets/tiny.zip"]  # no second request
    assert "nothing to do" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in output.rglob("*")} == before
    # The library function is a no-op too, even with an unreachable mirror.
    assert download_beir("tiny", output, base_url=server.url + "/missing", md5=md5) == output


def test_md5_mismatch(server: Server, out_parent: Path, capsys) -> None:
    md5 = server.add("tiny", _beir_members("tiny"))
    output = out_parent / "tiny"
    wrong = "0" * 32
    rc = main(
        ["--dataset", "tiny", "--output_dir", str(output), "--base_url", server.url, "--md5", wrong]
    )
    line = _assert_clean_failure(rc, capsys, output, "md5 mismatch for tiny.zip")
    assert line == f"error: md5 mismatch for tiny.zip: expected {wrong}, got {md5}"


def test_table_md5_is_used_for_known_dataset(server: Server, out_parent: Path, capsys) -> None:
    # A fake scifact.zip cannot match the official checksum.
    md5 = server.add("scifact", _beir_members("scifact"))
    output = out_parent / "scifact"
    rc = main(["--dataset", "scifact", "--output_dir", str(output), "--base_url", server.url])
    _assert_clean_failure(rc, capsys, output, f"expected {BEIR_MD5['scifact']}, got {md5}")
    # ... and --md5 overrides the table.
    argv = ["--dataset", "scifact", "--output_dir", str(output), "--base_url", server.url]
    assert main([*argv, "--md5", md5, "--quiet"]) == 0
    assert (output / "qrels" / "test.tsv").is_file()


def test_http_404(server: Server, out_parent: Path, capsys) -> None:
    output = out_parent / "absent"
    argv = ["--dataset", "absent", "--output_dir", str(output), "--base_url", server.url]
    rc = main([*argv, "--md5", "0" * 32])
    _assert_clean_failure(
        rc, capsys, output, f"download of {server.url}/absent.zip failed: HTTP 404"
    )


@pytest.mark.parametrize("evil", ["../evil.txt", "tiny/../../evil.txt", "/tmp/evil.txt"])
def test_zip_path_traversal_rejected(
    server: Server, out_parent: Path, tmp_path: Path, capsys, evil: str
) -> None:
    md5 = server.add("tiny", {**_beir_members("tiny"), evil: "pwned"})
    output = out_parent / "tiny"
    argv = ["--dataset", "tiny", "--output_dir", str(output), "--base_url", server.url]
    rc = main([*argv, "--md5", md5])
    _assert_clean_failure(rc, capsys, output, "unsafe path in zip archive")
    assert not list(tmp_path.rglob("evil.txt"))


def test_incomplete_archive_rejected(server: Server, out_parent: Path, capsys) -> None:
    members = _beir_members("tiny")
    del members["tiny/queries.jsonl"]
    md5 = server.add("tiny", members)
    output = out_parent / "tiny"
    argv = ["--dataset", "tiny", "--output_dir", str(output), "--base_url", server.url]
    rc = main([*argv, "--md5", md5])
    _assert_clean_failure(rc, capsys, output, "does not contain a complete BEIR dataset")


def test_not_a_zip(server: Server, out_parent: Path, capsys) -> None:
    (server.root / "datasets").mkdir()
    body = b"<html>not a zip</html>"
    (server.root / "datasets" / "tiny.zip").write_bytes(body)
    output = out_parent / "tiny"
    argv = ["--dataset", "tiny", "--output_dir", str(output), "--base_url", server.url]
    rc = main([*argv, "--md5", hashlib.md5(body).hexdigest()])
    _assert_clean_failure(rc, capsys, output, "not a valid zip archive")


def test_unknown_dataset_without_md5(server: Server, out_parent: Path, capsys) -> None:
    output = out_parent / "mystery"
    rc = main(["--dataset", "mystery", "--output_dir", str(output), "--base_url", server.url])
    _assert_clean_failure(rc, capsys, output, "no known md5", "--md5")
    assert server.requests == []


@pytest.mark.parametrize("name", ["../up", "a/b", ""])
def test_invalid_dataset_name(out_parent: Path, name: str) -> None:
    with pytest.raises(DownloadError, match="invalid dataset name"):
        download_beir(name, out_parent / "x", base_url="http://127.0.0.1:9", md5="0" * 32)


def test_invalid_md5(out_parent: Path) -> None:
    with pytest.raises(DownloadError, match="invalid md5"):
        download_beir("tiny", out_parent / "x", base_url="http://127.0.0.1:9", md5="abc")


def test_existing_empty_dir_is_filled(server: Server, out_parent: Path) -> None:
    md5 = server.add("tiny", _beir_members("tiny"))
    output = out_parent / "tiny"
    output.mkdir()
    assert download_beir("tiny", output, base_url=server.url, md5=md5, progress=False) == output
    assert (output / "corpus.jsonl").is_file()
    assert sorted(p.name for p in out_parent.iterdir()) == ["tiny"]


def test_existing_partial_dir_is_not_clobbered(server: Server, out_parent: Path) -> None:
    md5 = server.add("tiny", _beir_members("tiny"))
    output = out_parent / "tiny"
    output.mkdir()
    (output / "corpus.jsonl").write_text("half\n")
    with pytest.raises(DownloadError, match="not a complete dataset"):
        download_beir("tiny", output, base_url=server.url, md5=md5, progress=False)
    assert (output / "corpus.jsonl").read_text() == "half\n"
    assert server.requests == []


def test_archive_without_top_folder(server: Server, out_parent: Path) -> None:
    members = {k.removeprefix("tiny/"): v for k, v in _beir_members("tiny").items()}
    md5 = server.add("tiny", members)
    output = out_parent / "tiny"
    download_beir("tiny", output, base_url=server.url, md5=md5, progress=False)
    assert (output / "qrels" / "test.tsv").read_text() == QRELS
    assert sorted(p.name for p in out_parent.iterdir()) == ["tiny"]


def test_nested_layout_counts_as_complete(tmp_path: Path) -> None:
    # cqadupstack ships one BEIR dataset per forum subdirectory.
    for forum in ("android", "gis"):
        for member, text in _beir_members(forum).items():
            path = tmp_path / "cqadupstack" / member
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    assert download.is_complete_dataset(tmp_path / "cqadupstack")
    assert not download.is_complete_dataset(tmp_path / "cqadupstack" / "android" / "qrels")


def test_module_entry_point(server: Server, out_parent: Path) -> None:
    md5 = server.add("tiny", _beir_members("tiny"))
    output = out_parent / "tiny"
    base = [sys.executable, "-m", "cross_encoder.data.download", "--dataset", "tiny"]
    base += ["--output_dir", str(output), "--base_url", server.url]
    bad = subprocess.run([*base, "--md5", "f" * 32], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: md5 mismatch") and "Traceback" not in bad.stderr
    assert not output.exists()
    good = subprocess.run([*base, "--md5", md5], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert (output / "corpus.jsonl").is_file()
