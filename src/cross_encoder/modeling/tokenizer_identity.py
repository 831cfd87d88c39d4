"""Which tokenizer made a tokenized folder, and a guard against scoring it with another one.

:mod:`cross_encoder.preprocess` writes ``tokenizer_identity.json`` into every folder it
tokenizes: the tokenizer's name or path, a sha256 of its vocabulary (the sorted
``token -> id`` items), its normaliser and pre-tokeniser (from the fast tokenizer's own
JSON), the ids of its special tokens, ``max_seq_length`` and ``use_title``. Token ids mean
something only to the vocabulary that made them: a model whose tokenizer maps the same
words to other ids trains or predicts without any error, on noise.

:func:`check_folders` compares a folder's record with the model's tokenizer
(``cross_encoder.run`` calls it for every tokenized folder before it reads or writes
anything; teacher scores are ``cross_encoder.run --do_predict`` too, and
``cross_encoder.distillation.distill`` tokenizes raw text with its own bi-encoder's tokenizer).
Only what
decides token ids counts (:data:`DECISIVE`): a copy of the same tokenizer at another path,
or another ``max_seq_length``, is no mismatch. A mismatch is one line and exit 2, unless
``--allow_tokenizer_mismatch`` (then a warning). Folders without a record (written before
this record existed, or by RetroMAE's own ``preprocess.py``) get one warning, and the one thing
their token ids still tell is checked: none may be outside the model's vocabulary.

The trained model folder carries the record of the corpus it was trained on, so predict also
knows whether passages must be ``title [SEP] text`` (``use_title``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cross_encoder.io import InputError, PathLike, read_json, write_json

logger = logging.getLogger(__name__)

IDENTITY_FILE = "tokenizer_identity.json"
FORMAT_VERSION = 1
SPECIAL = ("cls", "sep", "pad", "unk", "mask", "bos", "eos")
# What decides the token ids of a text (use_title: whether a passage is "title [SEP] text").
DECISIVE = ("vocab_sha256", "normalizer", "pre_tokenizer", "special_token_ids")
FLAG = "--allow_tokenizer_mismatch"


def vocab_sha256(tokenizer) -> str:
    """sha256 of the vocabulary's sorted ``(token, id)`` items (added tokens included)."""
    items = sorted(tokenizer.get_vocab().items())
    blob = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _backend(tokenizer) -> dict[str, Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer: only the vocabulary tells it apart
        return {}
    return json.loads(backend.to_str())


def build(
    tokenizer,
    name: str | None = None,
    max_seq_length: int | None = None,
    use_title: bool | None = None,
) -> dict[str, Any]:
    """The identity record of ``tokenizer`` (``name``: how the user named it)."""
    backend = _backend(tokenizer)
    special = {}
    for kind in SPECIAL:
        tid = getattr(tokenizer, f"{kind}_token_id", None)
        if tid is not None:
            special[kind] = int(tid)
    return {
        "format": FORMAT_VERSION,
        "name_or_path": str(name or tokenizer.name_or_path),
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "vocab_sha256": vocab_sha256(tokenizer),
        "normalizer": backend.get("normalizer"),
        "pre_tokenizer": backend.get("pre_tokenizer"),
        "special_token_ids": special,
        "max_seq_length": max_seq_length,
        "use_title": use_title,
    }


def write(folder: PathLike, identity: Mapping[str, Any]) -> Path:
    """Write ``identity`` into ``folder`` atomically; returns the file."""
    path = Path(folder) / IDENTITY_FILE
    write_json(path, dict(identity))
    return path


def folder_of(path: PathLike) -> Path:
    """The folder of a tokenized collection given as its folder or one of its data files."""
    p = Path(path)
    return p if p.is_dir() else p.parent


def read(folder: PathLike) -> dict[str, Any] | None:
    """The record of a tokenized folder (or of its data file); None if it has none."""
    path = folder_of(folder) / IDENTITY_FILE
    if not path.exists():
        return None
    identity = read_json(path)
    if not isinstance(identity, dict) or "vocab_sha256" not in identity:
        raise InputError(path, "not a tokenizer identity record (no 'vocab_sha256')")
    return identity


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The :data:`DECISIVE` fields where two records disagree (name and length never count)."""
    return [k for k in DECISIVE if recorded.get(k) != current.get(k)]


def describe(identity: Mapping[str, Any]) -> str:
    """A tokenizer identity in a few words for error messages."""
    return f"{identity.get('name_or_path')} (vocab sha256 {str(identity['vocab_sha256'])[:12]}…)"


def _what(diff: list[str]) -> str:
    names = {
        "vocab_sha256": "vocabulary",
        "normalizer": "normaliser",
        "pre_tokenizer": "pre-tokeniser",
        "special_token_ids": "special-token ids",
        "use_title": "use_title",
    }
    return ", ".join(names[d] for d in diff)


def check(
    folder: PathLike,
    tokenizer,
    allow_mismatch: bool = False,
    model: str | None = None,
    current: Mapping[str, Any] | None = None,
    use_title: bool | None = None,
) -> bool | None:
    """Compare ``folder``'s record with ``tokenizer`` (the model's, named ``model``).

    Returns True when they agree, None when the folder has no record (then only that its
    token ids are all below the tokenizer's size is checked, see :func:`max_token_id`),
    False on a mismatch allowed by ``allow_mismatch`` (logged as a warning); raises
    :class:`InputError` (one line, both named) on a mismatch otherwise. ``use_title``: what
    the model was trained with, if known; compared with the folder's when both are known.
    """
    recorded = read(folder)
    current = current if current is not None else build(tokenizer)
    if recorded is None:
        return _check_range(folder, current, allow_mismatch, model)
    diff = differences(recorded, current)
    recorded_title = recorded.get("use_title")
    if use_title is not None and recorded_title is not None and recorded_title != use_title:
        diff.append("use_title")
    if not diff:
        return True
    model = model or current.get("name_or_path")
    if diff == ["use_title"]:
        message = (
            f"{folder} was tokenized with use_title={recorded['use_title']} but the model "
            f"{model} was trained with use_title={use_title}; re-run preprocess "
            f"{'with' if use_title else 'without'} --use_title, or pass {FLAG} if you mean it"
        )
    else:
        message = (
            f"{folder} was tokenized with {describe(recorded)} but the model {model} has "
            f"tokenizer {describe(current)} ({_what(diff)} "
            f"{'differs' if len(diff) == 1 else 'differ'}); re-run preprocess with "
            f"--tokenizer_name {current.get('name_or_path')}, or pass {FLAG} if you mean it"
        )
    if not allow_mismatch:
        raise InputError(None, message)
    logger.warning("%s given: %s", FLAG, message.split("; re-run")[0])
    return False


def max_token_id(folder: PathLike) -> int | None:
    """The largest token id in a tokenized folder (None when it has none)."""
    import pyarrow.compute as pc

    from cross_encoder.io.collection import read_table

    table, _ = read_table(folder)
    values = pc.list_flatten(table.column("input_ids"))
    top = pc.max(values).as_py() if len(values) else None
    return None if top is None else int(top)


def _check_range(
    folder: PathLike, current: Mapping[str, Any], allow_mismatch: bool, model: str | None
) -> bool | None:
    """What a folder without a record can still tell: a token id at or above the size of the
    model's vocabulary was made by another tokenizer. None when no id is out of range
    (nothing more to compare), else as :func:`check` on a mismatch."""
    top = max_token_id(folder)
    size = current.get("vocab_size")
    if top is None or size is None or top < size:
        return None
    model = model or current.get("name_or_path")
    message = (
        f"{folder} holds token id {top}, outside the {size} ids of the model {model}'s "
        f"tokenizer {describe(current)}: it was tokenized with another tokenizer; re-run "
        f"preprocess with --tokenizer_name {current.get('name_or_path')}, or pass {FLAG} if "
        "you mean it"
    )
    if not allow_mismatch:
        raise InputError(None, message)
    logger.warning("%s given: %s", FLAG, message.split("; re-run")[0])
    return False


def check_folders(
    folders: Mapping[str, PathLike | None],
    tokenizer,
    allow_mismatch: bool = False,
    model: str | None = None,
    name: str | None = None,
    use_title: bool | None = None,
) -> dict[str, bool | None]:
    """:func:`check` every existing folder of ``{flag: folder}``; one warning lists the ones
    without a record (written before records existed). ``use_title`` is compared for the
    corpus (``corpus_file``) only: queries have no titles. Returns ``{flag: check's result}``.
    """
    current = build(tokenizer, name)
    seen: dict[str, bool | None] = {}
    results: dict[str, bool | None] = {}
    for flag, folder in folders.items():
        if not folder or not Path(folder).exists():
            continue  # the caller reports a missing input in its own words
        key = str(folder_of(folder).resolve())
        if key not in seen:
            ut = use_title if flag == "corpus_file" else None
            seen[key] = check(folder, tokenizer, allow_mismatch, model, current, ut)
        results[flag] = seen[key]
    legacy = [str(folders[f]) for f, r in results.items() if r is None]
    if legacy:
        logger.warning(
            "%s: no %s (tokenized before tokenizer records existed, or by RetroMAE's "
            "preprocess.py): cannot check that the model's tokenizer %s made these token ids "
            "(only that they are within its vocabulary); re-run preprocess to record it",
            ", ".join(dict.fromkeys(legacy)),
            IDENTITY_FILE,
            describe(current),
        )
    return results
