"""The pair format: how a query and a passage, both already token ids, become one model input.

One home for what training, predicting, serving and the OpenVINO backend all feed the model
(Tevatron keeps its train and inference collators together in ``reranker/collator.py``):

* :class:`PairTemplate` turns ``(query_ids, passage_ids)`` into the model's pair input
  (``[CLS] q [SEP] p [SEP]`` for BERT, ``<s> q </s></s> p </s>`` for RoBERTa, ...), read off
  the tokenizer itself, truncating the passage first and the query only when it alone would
  not leave room for a passage (FlagEmbedding#202), and pads built pairs into a batch.
* :class:`PairBuilder` builds the same padded batch straight from two tokenized collections'
  flat token arrays, given row indices (what scoring a ranking of millions of pairs needs).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch


class PairTemplate:
    """Special tokens and token types of a pair, as the tokenizer lays them out.

    Args:
        tokenizer: a fast HF tokenizer; the layout is read off its encoding of a pair.
        max_len: tokens of a whole pair, special tokens included.
        min_passage_len: tokens the query leaves for the passage at least.

    Raises:
        ValueError: ``max_len`` leaves no room for text, or the layout cannot be read.

    References:
        FlagEmbedding#202 (truncate the passage first, the query only when it alone would
        leave no room).
    """

    def __init__(self, tokenizer, max_len: int, min_passage_len: int = 16):
        a = tokenizer("apple", add_special_tokens=False)["input_ids"]
        b = tokenizer("zebra", add_special_tokens=False)["input_ids"]
        full = tokenizer("apple", "zebra", return_token_type_ids=True)
        ids = full["input_ids"]
        types = full.get("token_type_ids") or [0] * len(ids)
        i = _find(ids, a, 0)
        j = _find(ids, b, i + len(a))
        self.prefix = ids[:i]
        self.middle = ids[i + len(a) : j]
        self.suffix = ids[j + len(b) :]
        self.type_a = types[i]
        self.type_b = types[j]
        self.types_prefix = types[:i]
        self.types_middle = types[i + len(a) : j]
        self.types_suffix = types[j + len(b) :]
        self.uses_token_types = "token_type_ids" in tokenizer.model_input_names
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.n_special = len(self.prefix) + len(self.middle) + len(self.suffix)
        self.max_len = max_len
        if max_len <= self.n_special:
            raise ValueError(f"max_len={max_len} leaves no room for text")
        # The query may take at most what leaves min_passage_len tokens for the passage.
        self.max_query_len = max(1, max_len - self.n_special - min_passage_len)

    def build(self, q: Sequence[int], p: Sequence[int]) -> tuple[list[int], list[int]]:
        """One pair's model input, truncated to ``max_len``.

        Args:
            q: the query's token ids (no special tokens).
            p: the passage's token ids (no special tokens).

        Returns:
            ``(input_ids, token_type_ids)``: the tokenizer's own layout of the pair; the query
            keeps at most ``max_query_len`` tokens, the passage what room is left.
        """
        q = list(q[: self.max_query_len])
        room = self.max_len - self.n_special - len(q)
        p = list(p[:room])
        ids = self.prefix + q + self.middle + p + self.suffix
        types = (
            self.types_prefix
            + [self.type_a] * len(q)
            + self.types_middle
            + [self.type_b] * len(p)
            + self.types_suffix
        )
        return ids, types

    def pad(self, pairs: Sequence[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        """Pad built pairs to the longest one; returns model inputs.

        Built with numpy in one go (a boolean mask scatter of the concatenated ids), not one
        tensor per pair: the per-batch Python cost stays a few microseconds per pair.
        """
        n = len(pairs)
        lens = np.fromiter((len(ids) for ids, _ in pairs), dtype=np.int64, count=n)
        width = int(lens.max())
        filled = np.arange(width)[None, :] < lens[:, None]
        total = int(lens.sum())
        input_ids = np.full((n, width), self.pad_id, dtype=np.int64)
        input_ids[filled] = np.fromiter(
            itertools.chain.from_iterable(ids for ids, _ in pairs), dtype=np.int64, count=total
        )
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(filled.astype(np.int64)),
        }
        if self.uses_token_types:
            types = np.zeros((n, width), dtype=np.int64)
            types[filled] = np.fromiter(
                itertools.chain.from_iterable(tt for _, tt in pairs), dtype=np.int64, count=total
            )
            batch["token_type_ids"] = torch.from_numpy(types)
        return batch


def _find(seq: list[int], sub: list[int], start: int) -> int:
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i : i + len(sub)] == sub:
            return i
    raise ValueError("cannot read the pair layout off this tokenizer")


class PairBuilder:
    """Model inputs of pairs given as row indices into two tokenized collections, built with
    numpy from the collections' flat token arrays: the same ids and token types as
    :meth:`PairTemplate.build` + :meth:`PairTemplate.pad`, without a Python list per pair."""

    def __init__(self, template: PairTemplate, queries, corpus):
        self.template = template
        self.q_offsets, self.q_values = queries.offsets, queries.values
        self.p_offsets, self.p_values = corpus.offsets, corpus.values
        self.q_lens = np.diff(queries.offsets)
        self.p_lens = np.diff(corpus.offsets)
        t = template
        self.n_prefix, self.n_middle = len(t.prefix), len(t.middle)

    def parts(self, qrows: np.ndarray, prows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tokens of each pair's query and passage after truncation (as ``build`` does)."""
        t = self.template
        qlen = np.minimum(self.q_lens[qrows], t.max_query_len)
        room = np.maximum(t.max_len - t.n_special - qlen, 0)
        plen = np.minimum(self.p_lens[prows], room)
        return qlen, plen

    def lengths(self, qrows: np.ndarray, prows: np.ndarray) -> np.ndarray:
        """Token count of each pair after truncation, special tokens included (int32)."""
        qlen, plen = self.parts(qrows, prows)
        return (qlen + plen + self.template.n_special).astype(np.int32)

    def pad(self, qrows: np.ndarray, prows: np.ndarray) -> dict[str, torch.Tensor]:
        """``template.pad([template.build(q, p) ...])`` for these rows."""
        t = self.template
        qlen, plen = self.parts(qrows, prows)
        lens = qlen + plen + t.n_special
        n, width = len(qrows), int(lens.max())
        col = np.arange(width)[None, :]
        q_end = self.n_prefix + qlen[:, None]  # first column after the query
        p_start = q_end + self.n_middle
        p_end = p_start + plen[:, None]
        input_ids = np.full((n, width), t.pad_id, dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64) if t.uses_token_types else None
        in_q = (col >= self.n_prefix) & (col < q_end)
        in_p = (col >= p_start) & (col < p_end)
        q_src = self.q_offsets[qrows][:, None] + (col - self.n_prefix)
        p_src = self.p_offsets[prows][:, None] + (col - p_start)
        input_ids[in_q] = self.q_values[q_src[in_q]]
        input_ids[in_p] = self.p_values[p_src[in_p]]
        if types is not None:
            types[in_q] = t.type_a
            types[in_p] = t.type_b
        # the special tokens: prefix at 0, middle after the query, suffix after the passage
        rows = np.arange(n)[:, None]
        for ids, tts, start in (
            (t.prefix, t.types_prefix, np.zeros((n, 1), dtype=np.int64)),
            (t.middle, t.types_middle, q_end),
            (t.suffix, t.types_suffix, p_end),
        ):
            if not ids:
                continue
            cols = start + np.arange(len(ids))[None, :]
            input_ids[rows, cols] = np.asarray(ids, dtype=np.int64)[None, :]
            if types is not None:
                types[rows, cols] = np.asarray(tts, dtype=np.int64)[None, :]
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy((col < lens[:, None]).astype(np.int64)),
        }
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(types)
        return batch
