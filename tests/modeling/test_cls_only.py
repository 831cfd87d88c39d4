"""The last layer computed for the first token only gives the full model's scores."""

from __future__ import annotations

import pytest
import torch
from helpers.tiny import TINY_SIZES
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from cross_encoder.modeling.cls_only import FirstTokenLayer, first_token_only, supported


def _model(cls, config_cls, attn: str, **extra):
    torch.manual_seed(0)
    config = config_cls(**TINY_SIZES, **extra)
    config._attn_implementation = attn
    return cls(config).eval()


def _batch(pad_id: int = 0):
    torch.manual_seed(1)
    ids = torch.randint(5, 99, (5, 12))
    mask = torch.ones_like(ids)
    for i, length in enumerate([12, 9, 7, 12, 3]):  # padded rows, as a length-sorted batch
        mask[i, length:] = 0
        ids[i, length:] = pad_id
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize(
    "cls,config_cls,pad",
    [
        (BertForSequenceClassification, BertConfig, 0),
        (RobertaForSequenceClassification, RobertaConfig, 1),
        (ElectraForSequenceClassification, ElectraConfig, 0),
    ],
)
def test_first_token_only_scores_equal_the_full_model(cls, config_cls, pad, attn):
    model = _model(cls, config_cls, attn, pad_token_id=pad)
    batch = _batch(pad)
    last = model.base_model.encoder.layer[-1]
    with torch.inference_mode():
        full = model(**batch).logits
        with first_token_only(model) as pruned:
            assert pruned
            assert isinstance(model.base_model.encoder.layer[-1], FirstTokenLayer)
            fast = model(**batch).logits
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    assert model.base_model.encoder.layer[-1] is last  # restored
    assert supported(model)


def test_a_batch_without_padding_and_a_single_pair():
    model = _model(BertForSequenceClassification, BertConfig, "sdpa")
    for batch in (
        {"input_ids": torch.randint(5, 99, (3, 8))},  # no mask: every position attends
        {"input_ids": torch.randint(5, 99, (1, 4)), "attention_mask": torch.ones(1, 4).long()},
    ):
        with torch.inference_mode():
            full = model(**batch).logits
            with first_token_only(model):
                fast = model(**batch).logits
        torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_other_models_are_left_whole():
    bert = _model(BertForSequenceClassification, BertConfig, "sdpa")
    encoder = bert.bert  # not a classifier: its output is every position
    layers = list(encoder.encoder.layer)
    with first_token_only(encoder) as pruned:
        assert not pruned
        assert list(encoder.encoder.layer) == layers
    with first_token_only(bert, enabled=False) as pruned:
        assert not pruned
    relative = _model(
        BertForSequenceClassification,
        BertConfig,
        "eager",
        position_embedding_type="relative_key",
    )
    assert not supported(relative)


def test_the_layer_is_restored_after_an_error():
    model = _model(BertForSequenceClassification, BertConfig, "sdpa")
    last = model.bert.encoder.layer[-1]
    with pytest.raises(RuntimeError), first_token_only(model):
        raise RuntimeError("boom")
    assert model.bert.encoder.layer[-1] is last
