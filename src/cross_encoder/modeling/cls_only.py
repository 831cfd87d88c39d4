"""Score with the last encoder layer computed for the first token only.

A cross-encoder's score reads one vector: the first token's (``[CLS]`` / ``<s>``) output of the
last layer, through the pooler or classification head. Every other position of the last layer
is computed and thrown away: its query projection, its rows of attention, its output projection
and its feed-forward block. This module swaps the last layer for one that computes that single
row (keys and values still from every position, so the result is the same vector up to float
rounding): on MiniLM-L6 at 96-256 tokens a pair, 1/6 of the attention and about 14% of the
linear layers' work are gone. Inference only; the weights are the layer's own (shared, not
copied), so the model trains and saves as before.

It applies to the architectures whose classifier reads position 0 and whose layers follow
BERT's layout (``attention.self.{query,key,value}``, ``attention.output``,
``feed_forward_chunk``) with the eager or SDPA attention: :data:`ARCHITECTURES`. Anything else
is left whole (:func:`first_token_only` returns False and says why at debug level).
"""

from __future__ import annotations

import contextlib
import logging

import torch

logger = logging.getLogger(__name__)

# Classifiers that read the first token of the last layer (BertPooler or a head on [:, 0]).
ARCHITECTURES = frozenset(
    {
        "BertForSequenceClassification",
        "RobertaForSequenceClassification",
        "XLMRobertaForSequenceClassification",
        "CamembertForSequenceClassification",
        "ElectraForSequenceClassification",
    }
)


class FirstTokenLayer(torch.nn.Module):
    """``layer`` (a BERT-style encoder layer) computed for position 0 only.

    Returns ``(batch, 1, hidden)``: the first token's output, which is all the pooler or head
    reads. Keys and values come from every position, masked as the full layer masks them.
    """

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.bert.modeling_bert import eager_attention_forward

        attention = self.layer.attention
        sa = attention.self
        batch = hidden_states.shape[0]
        head = sa.attention_head_size
        first = hidden_states[:, :1]
        query = sa.query(first).view(batch, 1, -1, head).transpose(1, 2)
        key = sa.key(hidden_states).view(batch, -1, sa.num_attention_heads, head).transpose(1, 2)
        value = sa.value(hidden_states).view(batch, -1, sa.num_attention_heads, head)
        value = value.transpose(1, 2)
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = attention_mask[:, :, :1, :]  # the first query row
        interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            sa.config._attn_implementation, eager_attention_forward
        )
        out, _ = interface(sa, query, key, value, attention_mask, dropout=0.0, scaling=sa.scaling)
        out = attention.output(out.reshape(batch, 1, -1).contiguous(), first)
        return self.layer.feed_forward_chunk(out)


def _last_layer(model):
    """``(layers, reason)``: the encoder's ModuleList of layers, or None and why not."""
    if type(model).__name__ not in ARCHITECTURES:
        return None, f"{type(model).__name__} is not one of the first-token classifiers"
    config = model.config
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return None, "a decoder configuration"
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return None, f"position_embedding_type {config.position_embedding_type}"
    if config._attn_implementation not in ("eager", "sdpa"):
        return None, f"attention implementation {config._attn_implementation}"
    base = getattr(model, model.base_model_prefix, None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList) or not len(layers):
        return None, "no encoder.layer list"
    last = layers[-1]
    sa = getattr(getattr(last, "attention", None), "self", None)
    if not all(hasattr(sa, n) for n in ("query", "key", "value", "scaling")) or not hasattr(
        last, "feed_forward_chunk"
    ):
        return None, f"{type(last).__name__} does not follow BERT's layer layout"
    return layers, ""


def supported(model) -> bool:
    """Whether :func:`first_token_only` would prune ``model``."""
    return _last_layer(model)[0] is not None


@contextlib.contextmanager
def first_token_only(model, enabled: bool = True):
    """Within the block, ``model``'s last layer computes position 0 only (see the module's
    docstring); yields whether it does. Restores the layer on exit."""
    layers, reason = _last_layer(model) if enabled else (None, "disabled")
    if layers is None:
        logger.debug("last layer kept whole: %s", reason)
        yield False
        return
    last = layers[-1]
    layers[-1] = FirstTokenLayer(last)
    try:
        yield True
    finally:
        layers[-1] = last
