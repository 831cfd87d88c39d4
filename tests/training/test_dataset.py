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


# Groups drawn by the string-list TrainDataset before negatives became int32 corpus rows
# (seed 11, group 5, topk 10; epochs 0 and 1): the row arrays must draw the same.
PINNED_NEGS = {
    "q0": "p15 p37 p34 p8 p23 p58 p38 p30 p40 p37 p4 p38",
    "q1": "p0 p58 p53 p30 p16 p35 p14 p12 p45 p30 p34 p53",
    "q2": "p35 p30 p25 p40 p55 p9 p14 p40 p9 p55 p59 p33",
    "q3": "p24 p47 p0 p42 p49 p4 p10 p48 p37 p2 p19 p49",
    "q4": "p1 p52 p55",
    "q5": "p17 p30 p38 p46 p58 p56 p24 p45 p50 p58 p27 p25",
}
PINNED = {
    (): "p0 p40 p8 p37 p37|p1 p16 p30 p0 p14|p2 p25 p14 p9 p40|p3 p2 p49 p42 p10|"
    "p4 p1 p52 p55 p32|p5 p17 p46 p58 p38||p0 p37 p37 p58 p38|p1 p14 p0 p45 p35|"
    "p2 p40 p55 p30 p14|p3 p10 p42 p24 p0|p4 p1 p52 p55 p9|p5 p38 p56 p45 p58",
    (("sample_neg_skip_topk", 2), ("random_negatives", 1)): "p0 p58 p30 p38 p13|"
    "p1 p14 p30 p53 p52|p2 p55 p40 p9 p26|p3 p10 p42 p4 p55|p4 p55 p32 p40 p43|"
    "p5 p38 p24 p46 p54||p0 p8 p23 p58 p41|p1 p45 p53 p30 p57|p2 p9 p40 p25 p54|"
    "p3 p37 p42 p0 p21|p4 p55 p9 p25 p42|p5 p58 p58 p56 p16",
}


def pinned_collections():
    corpus = coll({f"p{i}": [i + 1] for i in range(60)})
    queries = coll({f"q{i}": [100 + i] for i in range(6)})
    return queries, corpus, {f"q{i}": [f"p{i}"] for i in range(6)}


def drawn(ds) -> str:
    epochs = []
    for e in range(2):
        ds.set_epoch(e)
        epochs.append("|".join(" ".join(ds.sample(i)[1]) for i in range(len(ds))))
    return "||".join(epochs)


@pytest.mark.parametrize("kwargs", list(PINNED))
def test_negatives_as_rows_draw_the_groups_of_string_lists(kwargs):
    queries, corpus, pos = pinned_collections()
    negs = {q: v.split() for q, v in PINNED_NEGS.items()}
    ds = TrainDataset(queries, corpus, pos, negs, 5, 10, seed=11, **dict(kwargs))
    assert all(v.dtype == np.int32 for v in ds.negatives.values())
    assert drawn(ds) == PINNED[kwargs]


def test_training_data_streamed_from_files_equals_the_loaded_dicts(tmp_path, caplog):
    from types import SimpleNamespace

    from cross_encoder.io import InputError, read_neg_file
    from cross_encoder.training.dataset import load_training_data

    queries, corpus, pos = pinned_collections()
    # q0's negatives over two lines, an unknown pid, a query that is not judged
    lines = [f"{q}\t{','.join(v.split()[:6])}" for q, v in PINNED_NEGS.items()]
    lines += ["q0\tp4,nowhere,p38", "q9\tp7,p8"]
    (tmp_path / "negs.tsv").write_text("\n".join(lines) + "\n")
    (tmp_path / "qrels.tsv").write_text("".join(f"{q}\t{p[0]}\n" for q, p in pos.items()))
    queries_dir = tmp_path / "queries"
    from cross_encoder.io.collection import CollectionWriter

    writer = CollectionWriter(queries_dir)
    writer.write(queries.ids, [queries.tokens(q) for q in queries.ids])
    writer.close()
    args = SimpleNamespace(
        train_query_file=str(queries_dir), train_query_id_file=None,
        train_qrels=str(tmp_path / "qrels.tsv"), neg_file=str(tmp_path / "negs.tsv"),
        train_group_size=5, sample_neg_from_topk=10, sample_neg_skip_topk=0, random_negatives=0,
    )  # fmt: skip
    with caplog.at_level("WARNING"):
        streamed = load_training_data(args, 11, corpus)
    assert "1 passage ids are not in" in caplog.text
    negs = {q: [p for p in v if p != "nowhere"] for q, v in read_neg_file(args.neg_file).items()}
    loaded = TrainDataset(queries, corpus, pos, negs, 5, 10, seed=11)
    assert drawn(streamed) == drawn(loaded)
    assert streamed.negatives["q0"].tolist() == [15, 37, 34, 8, 23, 58, 4, 38]
    (tmp_path / "negs.tsv").write_text("q0\tx1,x2\n")
    with pytest.raises(InputError, match="none of its passage ids are in"):
        load_training_data(args, 11, corpus)
