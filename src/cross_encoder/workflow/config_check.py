"""The workflow's config check: one line per mistake (which key, what is wrong, which file
to fix) instead of Snakemake's dump of the whole schema, unknown keys with a "did you mean",
and the numbers and booleans Snakemake 9 hands over as strings turned back into what the
schema asks for. Called once from ``workflow/rules/common.smk`` before
``snakemake.utils.validate`` fills in the defaults."""

from __future__ import annotations

import contextlib
import difflib
import sys
from collections.abc import Iterable
from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    """Config mistakes, as one line."""


# Keys renamed so that one concept has one name (``max_len``: tokens kept, as the seed's
# ``cross_encoder.run --max_len``); a config with the old key still works, with a warning.
RENAMED = {
    ("preprocess", "max_seq_length"): "max_len",
    ("first_stage", "dense", "max_length"): "max_len",
    ("distill", "max_length"): "max_len",
}


def rename_deprecated(config: dict) -> list[str]:
    """Move every old key of :data:`RENAMED` to its new name (in place); one warning each.
    Both spellings at once is a mistake the schema check then reports."""
    notes = []
    for path, new in RENAMED.items():
        node = config
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        old = path[-1]
        if isinstance(node, dict) and old in node and new not in node:
            node[new] = node.pop(old)
            where = ".".join(path[:-1])
            notes.append(f"config: {where}.{old} is now {where}.{new}; please rename it")
    return notes


def coerce_strings(node, schema: dict) -> None:
    """Snakemake 9 passes values inside ``--config key='{...}'`` as strings: turn a string
    into the number or boolean the schema asks for (in place), so that
    ``--config train='{"learning_rate": 3e-5}'`` means what it says."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        sub = schema.get("properties", {}).get(key, {})
        types = sub.get("type", [])
        types = [types] if isinstance(types, str) else types
        if isinstance(value, dict):
            coerce_strings(value, sub)
        elif isinstance(value, str) and "string" not in types:
            text = value.strip()
            if "boolean" in types and text.lower() in ("true", "false"):
                node[key] = text.lower() == "true"
            elif "integer" in types and text.lstrip("+-").isdigit():
                node[key] = int(text)
            elif "number" in types:
                with contextlib.suppress(ValueError):  # else the schema check reports it
                    node[key] = float(text)


def problems(config: dict, schema: dict) -> list[str]:
    """One line per mistake in ``config`` (after :func:`coerce_strings`)."""
    coerce_strings(config, schema)
    errors = jsonschema.Draft202012Validator(schema).iter_errors(config)
    out = []
    for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in e.absolute_path) or "top level"
        if e.validator == "pattern" and "x-pattern-means" in e.schema:
            out.append(f"{where}: {e.instance!r} {e.schema['x-pattern-means']}")
            continue
        if e.validator != "additionalProperties":
            out.append(f"{where}: {e.message}")
            continue
        allowed = sorted(e.schema.get("properties", {}))
        for key in [k for k in e.instance if k not in allowed]:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            out.append(f"{where}: unknown key {key!r}; {hint}valid keys: {', '.join(allowed)}")
    return out


def check_config(config: dict, schema_file: Path | str, config_files: Iterable = ()) -> None:
    """Raise :class:`ConfigError` naming every mistake and the files to fix."""
    schema = yaml.safe_load(Path(schema_file).read_text(encoding="utf-8"))
    for note in rename_deprecated(config):
        print(f"warning: {note}", file=sys.stderr)
    found = problems(config, schema)
    if found:
        files = ", ".join(str(f) for f in config_files) or "the config"
        raise ConfigError(
            f"config error in {files}: "
            + "; ".join(found)
            + " (every key is documented in workflow/schemas/config.schema.yaml)"
        )
