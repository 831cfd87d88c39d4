import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from cross_encoder.io.collection import TokenizedCollection
from cross_encoder.modeling.pairs import PairTemplate
from cross_encoder.training.dataset import GroupCollator, TrainDataset


def coll(items: dict[str, list[int]]) -> TokenizedCollection:
    ids = list(items)
    lens = [len(items[i]) for i in ids]
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    values = np.array([t for i in ids for t in items[i]], dtype=np.int32)
    return TokenizedCollection(ids, offsets, values)


@pytest.fixture
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_pair_template_matches_tokenizer(tok):
    t = PairTemplate(tok, max_len=64)
    q = tok("where is the fox", add_special_tokens=False)["input_ids"]
    p = tok("the fox is by the river", add_special_tokens=False)["input_ids"]
    ids, types = t.build(q, p)
    ref = tok("where is the fox", "the fox is by the river", return_token_type_ids=True)
    assert ids == ref["input_ids"]
    assert types == ref["token_type_ids"]


def test_passage_truncated_first_and_long_query_guarded(tok):
    t = PairTemplate(tok, max_len=20, min_passage_len=4)
    ids, _ = t.build([5] * 5, [7] * 50)
    assert len(ids) == 20 and ids.count(5) == 5
    ids, _ = t.build([5] * 50, [7] * 50)  # query alone longer than max_len
    assert len(ids) == 20 and ids.count(7) == 4


def test_collator_pads_and_masks(tok):
    t = PairTemplate(tok, max_len=32)
    batch = GroupCollator(t)([([5, 6], [[7], [8, 9, 10]])])
    assert batch["input_ids"].shape == (2, 3 + 2 + 3)
    assert batch["attention_mask"].sum(1).tolist() == [6, 8]
    assert (batch["input_ids"][0, 6:] == tok.pad_token_id).all()


def make_dataset(negs, group_size=4, corpus_size=20, topk=200, **kwargs):
    corpus = coll({f"p{i}": [i + 1] for i in range(corpus_size)})
    queries = coll({"q1": [100], "q2": [101]})
    pos = {"q1": ["p0"], "q2": ["p1", "p2"]}
    return TrainDataset(queries, corpus, pos, negs, group_size, topk, seed=7, **kwargs)


def test_group_positive_first_negatives_from_topk():
    negs = {"q1": ["p0", "p3", "p4", "p5", "p6", "p7", "p8"]}
    ds = make_dataset(negs, group_size=4, topk=5)
    qid, pids = ds.sample(0)
    assert qid == "q1" and pids[0] == "p0"
    # top-5 of the neg_file without the positive: p3..p7
    assert set(pids[1:]) <= {"p3", "p4", "p5", "p6", "p7"}
    assert len(set(pids[1:])) == 3


def test_skip_top_ranks_then_sample_up_to_topk():
    negs = {"q1": ["p0", "p3", "p4", "p5", "p6", "p7", "p8", "p9"]}
    ds = make_dataset(negs, group_size=4, topk=6, sample_neg_skip_topk=2)
    # without the positive: p3..p9; ranks 3..6 of that list are p5..p8
    for epoch in range(5):
        ds.set_epoch(epoch)
        _, pids = ds.sample(0)
        assert set(pids[1:]) <= {"p5", "p6", "p7", "p8"}


def test_random_negatives_come_from_outside_the_neg_file():
    negs = {"q1": ["p3", "p4", "p5", "p6", "p7"]}
    ds = make_dataset(negs, group_size=5, corpus_size=200, random_negatives=2)
    outside = 0
    for epoch in range(10):
        ds.set_epoch(epoch)
        _, pids = ds.sample(0)
        assert len(set(pids)) == 5 and "p0" not in pids[1:]
        assert len(set(pids[1:]) & set(negs["q1"])) >= 2  # the hard ones
        outside += len(set(pids[1:]) - set(negs["q1"]))
    assert outside >= 15  # two random ones per group (the odd one may hit the neg_file)


def test_bad_sampling_window_and_random_count():
    with pytest.raises(ValueError, match="sample_neg_skip_topk"):
        make_dataset({}, topk=5, sample_neg_skip_topk=5)
    with pytest.raises(ValueError, match="random_negatives"):
        make_dataset({}, group_size=4, random_negatives=4)


def test_fill_with_random_non_positives_when_short():
    ds = make_dataset({"q2": ["p5"]}, group_size=6)
    qid, pids = ds.sample(1)
    assert qid == "q2" and pids[0] in {"p1", "p2"}
    assert "p5" in pids[1:]
    assert not {"p1", "p2"} & set(pids[1:])
    assert len(set(pids)) == 6


def test_resampled_each_epoch_and_reproducible():
    negs = {"q1": [f"p{i}" for i in range(3, 20)]}
    ds = make_dataset(negs, group_size=4)
    first = ds.sample(0)
    assert ds.sample(0) == first  # same epoch, same draw
    ds.set_epoch(1)
    assert ds.sample(0) != first
    ds2 = make_dataset(negs, group_size=4)
    ds2.set_epoch(1)
    assert ds2.sample(0) == ds.sample(0)


def test_getitem_returns_token_ids():
    ds = make_dataset({"q1": ["p3", "p4", "p5"]}, group_size=3)
    q, group = ds[0]
    assert q == [100] and group[0] == [1] and len(group) == 3


def test_group_size_must_be_at_least_two():
    with pytest.raises(ValueError):
        make_dataset({}, group_size=1)


def test_grouped_batch_feeds_a_model(tok, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    t = PairTemplate(tok, max_len=32)
    batch = GroupCollator(t)([([5, 6], [[7], [8, 9]]), ([5], [[7, 7], [9]])])
    with torch.no_grad():
        assert model(**batch).logits.shape == (4, 1)
