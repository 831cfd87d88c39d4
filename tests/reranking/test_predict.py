"""score_pairs on a tiny random BERT: input order, equality with a plain unbatched forward,
numpy padding, token-budget batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny import TINY_SIZES
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from cross_encoder.modeling.pairs import PairTemplate
from cross_encoder.reranking.predict import make_batches, score_pairs

WORDS = [f"w{i}" for i in range(90)]


class Coll:
    """The two methods of TokenizedCollection that score_pairs uses."""

    def __init__(self, tokens: dict[str, list[int]]):
        self.d = tokens

    def tokens(self, key: str) -> list[int]:
        return self.d[key]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "apple", "zebra"]
    vocab.write_text("\n".join(specials + WORDS) + "\n")
    return BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**TINY_SIZES)).eval()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    queries = Coll({f"q{i}": rng.integers(7, 97, rng.integers(1, 12)).tolist() for i in range(6)})
    corpus = Coll({f"p{i}": rng.integers(7, 97, rng.integers(1, 80)).tolist() for i in range(30)})
    pairs = [(f"q{rng.integers(6)}", f"p{rng.integers(30)}") for _ in range(70)]
    return queries, corpus, pairs


def plain_scores(model, template, queries, corpus, pairs) -> np.ndarray:
    """One pair at a time, no padding, the model's own forward."""
    out = []
    with torch.inference_mode():
        for q, p in pairs:
            ids, types = template.build(queries.tokens(q), corpus.tokens(p))
            logits = model(
                input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])
            ).logits
            out.append(float(logits[0, 0]))
    return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("max_tokens,max_pairs", [(256, 8), (16384, 512), (1, 1)])
def test_scores_equal_unbatched_forward(tokenizer, data, max_tokens, max_pairs):
    model = tiny_bert()
    template = PairTemplate(tokenizer, max_len=48)
    queries, corpus, pairs = data
    got = score_pairs(
        model, template, queries, corpus, pairs, max_tokens, max_pairs, progress=False
    )
    want = plain_scores(model, template, queries, corpus, pairs)
    assert got.dtype == np.float32 and got.shape == (len(pairs),)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_other_model_types_score_with_their_own_forward(tokenizer, data):
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, num_labels=1)
    ).eval()
    template = PairTemplate(tokenizer, max_len=48)
    template.uses_token_types = False  # DistilBERT takes no token_type_ids
    queries, corpus, pairs = data
    got = score_pairs(model, template, queries, corpus, pairs, 256, 8, progress=False)
    out = []
    with torch.inference_mode():
        for q, p in pairs:
            ids, _ = template.build(queries.tokens(q), corpus.tokens(p))
            out.append(float(model(input_ids=torch.tensor([ids])).logits[0, 0]))
    np.testing.assert_allclose(got, np.array(out), rtol=0, atol=1e-5)


def test_pad_layout(tokenizer):
    template = PairTemplate(tokenizer, max_len=16)
    built = [template.build([10, 11], [20, 21, 22]), template.build([12], [23])]
    batch = template.pad(built)
    (ids0, types0), (ids1, types1) = built
    assert batch["input_ids"].dtype == torch.long and batch["input_ids"].shape == (2, len(ids0))
    assert batch["input_ids"][0].tolist() == ids0
    assert batch["input_ids"][1].tolist() == ids1 + [template.pad_id] * (len(ids0) - len(ids1))
    assert batch["attention_mask"].tolist() == [
        [1] * len(ids0),
        [1] * len(ids1) + [0] * (len(ids0) - len(ids1)),
    ]
    assert batch["token_type_ids"][0].tolist() == types0
    assert batch["token_type_ids"][1].tolist() == types1 + [0] * (len(ids0) - len(ids1))


def test_make_batches_respects_budget_and_covers_all():
    lengths = [5, 50, 7, 30, 30, 2, 49]
    batches = make_batches(lengths, max_tokens=100, max_pairs=3)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100
