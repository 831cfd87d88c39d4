"""Download a BEIR dataset by name, verify its md5 and unpack it atomically.

Used by the Snakemake ``download`` rule::

    python -m cross_encoder.data.download --dataset scifact --output_dir resources/beir/scifact

The archive ``{base_url}/{name}.zip`` is streamed to a temporary file next to
``output_dir``, its md5 is checked against ``--md5`` or the table of official
BEIR checksums below, it is unpacked into a temporary directory next to
``output_dir`` (members with absolute paths or ``..`` components are refused),
the BEIR layout (``corpus.jsonl``, ``queries.jsonl``, ``qrels/*.tsv``) is
checked, and only then is the dataset renamed into place.  On any failure
nothing is left at ``output_dir`` and the temporary files are removed.  When
``output_dir`` already holds a complete dataset, nothing is downloaded.

Errors are reported as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from tqdm import tqdm

__all__ = [
    "BEIR_BASE_URL",
    "BEIR_MD5",
    "DownloadError",
    "download_beir",
    "is_complete_dataset",
    "main",
]

BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"

# md5 of the official zip archives, as published in the datasets table of the
# BEIR README (https://github.com/beir-cellar/beir) and, identically, as the
# ``expected_md5`` of the ``beir`` downloads in ir_datasets
# (https://github.com/allenai/ir_datasets, ir_datasets/etc/downloads.json).
# Only datasets downloadable from the official URL are listed; bioasq,
# signal1m, trec-news and robust04 are not publicly redistributed.
BEIR_MD5: dict[str, str] = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "cqadupstack": "4e41456d7df8ee7760a7f866133bda78",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}

_CHUNK_SIZE = 1 << 20
_TIMEOUT_S = 60.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")


class DownloadError(Exception):
    """A dataset could not be downloaded, verified or unpacked."""


def is_complete_dataset(path: Path) -> bool:
    """Whether ``path`` holds a BEIR dataset: corpus, queries and qrels TSVs.

    A directory whose every subdirectory is itself a complete dataset (the
    layout of ``cqadupstack``, one subdirectory per forum) also counts.
    """
    path = Path(path)
    if not path.is_dir():
        return False
    qrels = path / "qrels"
    if (
        (path / "corpus.jsonl").is_file()
        and (path / "queries.jsonl").is_file()
        and qrels.is_dir()
        and any(p.is_file() for p in qrels.glob("*.tsv"))
    ):
        return True
    if (path / "corpus.jsonl").exists():
        return False
    subdirs = [p for p in path.iterdir() if p.is_dir()]
    return bool(subdirs) and all(is_complete_dataset(p) for p in subdirs)


def _check_member_name(member: str) -> None:
    """Refuse zip members that could escape the extraction directory."""
    normalized = member.replace("\\", "/")
    parts = PurePosixPath(normalized).parts
    if (
        not member
        or normalized.startswith("/")
        or re.match(r"^[A-Za-z]:", normalized)
        or "\x00" in member
        or ".." in parts
    ):
        raise DownloadError(f"unsafe path in zip archive: {member!r}")


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest``, refusing path-traversal members."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member_name(info.filename)
            root = dest.resolve()
            for info in members:
                target = (root / info.filename).resolve()
                if target != root and root not in target.parents:
                    raise DownloadError(f"unsafe path in zip archive: {info.filename!r}")
            for info in members:
                zf.extract(info, root)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive.name} is not a valid zip archive: {exc}") from exc
    except OSError as exc:
        raise DownloadError(f"extracting {archive.name} failed: {exc}") from exc


def _fetch(url: str, dest: Path, label: str, progress: bool) -> str:
    """Stream ``url`` into ``dest`` and return the hex md5 of its content."""
    digest = hashlib.md5()
    request = urllib.request.Request(url, headers={"User-Agent": "cross-encoder-download/1"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with (
                open(dest, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=label,
                    disable=None if progress else True,
                    file=sys.stderr,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK_SIZE):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        reason = f" {exc.reason}" if exc.reason else ""
        raise DownloadError(f"download of {url} failed: HTTP {exc.code}{reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"download of {url} failed: {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise DownloadError(f"download of {url} failed: {exc}") from exc
    if total is not None and received != total:
        raise DownloadError(
            f"download of {url} failed: incomplete, got {received} of {total} bytes"
        )
    return digest.hexdigest()


def _find_dataset_root(extracted: Path, name: str) -> Path:
    """Locate the dataset inside the extracted archive (normally ``{name}/``)."""
    candidates = [extracted / name]
    entries = [p for p in extracted.iterdir() if not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        candidates.append(entries[0])
    candidates.append(extracted)
    for candidate in candidates:
        if is_complete_dataset(candidate):
            return candidate
    raise DownloadError(
        f"{name}.zip does not contain a complete BEIR dataset "
        "(expected corpus.jsonl, queries.jsonl and qrels/*.tsv)"
    )


def _remove(path: Path) -> None:
    """Best-effort removal of a temporary file or directory."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def download_beir(
    name: str,
    output_dir: str | os.PathLike[str],
    base_url: str = BEIR_BASE_URL,
    md5: str | None = None,
    *,
    progress: bool = True,
) -> Path:
    """Download BEIR dataset ``name`` into ``output_dir`` and return that path.

    ``md5`` overrides the checksum from :data:`BEIR_MD5`; a dataset missing from
    that table requires it.  Does nothing when ``output_dir`` already holds a
    complete dataset.  Raises :class:`DownloadError` on any failure, in which
    case nothing is left at ``output_dir``.
    """
    if not _NAME_RE.match(name):
        raise DownloadError(f"invalid dataset name {name!r}")
    if md5 is not None:
        if not _MD5_RE.match(md5):
            raise DownloadError(f"invalid md5 {md5!r}: expected 32 hex digits")
        expected = md5.lower()
    elif name in BEIR_MD5:
        expected = BEIR_MD5[name]
    else:
        raise DownloadError(
            f"no known md5 for dataset {name!r}; pass --md5 HEX "
            f"(known datasets: {', '.join(sorted(BEIR_MD5))})"
        )

    output = Path(output_dir)
    if is_complete_dataset(output):
        return output
    if output.is_symlink() or (output.exists() and not output.is_dir()):
        raise DownloadError(f"{output} exists and is not a directory; remove it first")
    if output.is_dir() and any(output.iterdir()):
        raise DownloadError(f"{output} exists but is not a complete dataset; remove it first")

    url = f"{base_url.rstrip('/')}/{name}.zip"
    parent = output.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {parent}: {exc}") from exc

    prefix = f".{output.name}.{name}."
    temps: list[Path] = []
    try:
        fd, zip_name = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=".zip.part")
        os.close(fd)
        archive = Path(zip_name)
        temps.append(archive)

        got = _fetch(url, archive, f"{name}.zip", progress)
        if got != expected:
            raise DownloadError(f"md5 mismatch for {name}.zip: expected {expected}, got {got}")

        extracted = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".extract"))
        temps.append(extracted)
        # mkdtemp makes a 0700 directory; extract one level down so that what
        # ends up at output_dir gets the usual umask-derived permissions.
        content = extracted / "content"
        content.mkdir()
        _safe_extract(archive, content)
        root = _find_dataset_root(content, name)
        _remove(archive)

        try:
            # Same filesystem, so this is an atomic rename; it replaces an
            # empty directory (POSIX) and fails on a non-empty one.
            os.replace(root, output)
        except OSError as exc:
            if is_complete_dataset(output):  # another process finished first
                return output
            raise DownloadError(f"cannot move dataset into {output}: {exc}") from exc
        return output
    except OSError as exc:
        raise DownloadError(f"writing {name} next to {output} failed: {exc}") from exc
    finally:
        for path in temps:
            _remove(path)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cross_encoder.data.download",
        description="Download a BEIR dataset, verify its md5 and unpack it atomically.",
    )
    parser.add_argument("--dataset", required=True, help="BEIR dataset name, e.g. scifact")
    parser.add_argument(
        "--output_dir", required=True, type=Path, help="directory the dataset ends up in"
    )
    parser.add_argument(
        "--base_url",
        default=BEIR_BASE_URL,
        help="URL prefix of {dataset}.zip (default: the official BEIR mirror)",
    )
    parser.add_argument(
        "--md5", default=None, help="expected md5 of the zip; overrides the built-in table"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    args = _parse_args(argv)
    output: Path = args.output_dir
    if is_complete_dataset(output):
        print(f"{output} already holds a complete {args.dataset} dataset; nothing to do")
        return 0
    try:
        download_beir(
            args.dataset, output, base_url=args.base_url, md5=args.md5, progress=not args.quiet
        )
    except DownloadError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"downloaded {args.dataset} to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
