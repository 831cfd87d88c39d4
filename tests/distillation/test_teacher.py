"""Teacher score files for RetroMAE's bi-encoder and the check that they cover every pair
it can sample (a missing one is a KeyError there)."""

import json
import math
import random
from pathlib import Path

import pytest

from cross_encoder import io
from cross_encoder.distillation import teacher

SCORES = {"q1": {"p1": 3.0, "n1": 1.0, "n2": -1.0}, "q2": {"p2": 2.0, "n3": 0.5}}
POS = {"q1": ["p1"], "q2": ["p2"]}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def retromae_lookup(score_files, qrels_file, neg_file, topk):
    """What RetroMAE's bi-encoder does with the files: whitespace-split `qid pid score`
    lines, `[x]` stripped; a score lookup for every positive and neg_file top-k entry."""
    scores = {}
    for path in score_files.split(","):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            qid, pid, s = line.strip().split()
            scores.setdefault(qid, {})[pid] = float(s.strip("[]"))
    negs = {}
    for line in Path(neg_file).read_text(encoding="utf-8").splitlines():
        qid, pids = line.split("\t")
        negs.setdefault(qid, []).extend(pids.split(","))
    n = 0
    for line in Path(qrels_file).read_text(encoding="utf-8").splitlines():
        qid, pids = line.split("\t")
        for pid in pids.split(",") + negs[qid][:topk]:
            assert math.isfinite(scores[qid][pid])  # KeyError if missing
            n += 1
    return n


def test_coverage_counts_only_what_can_be_sampled():
    negs = {"q1": ["n1", "n2", "unscored-deep"], "q2": ["n3"]}
    cov = teacher.coverage(SCORES, POS, negs, sample_neg_from_topk=2)
    assert cov.ok and cov.n_queries == 2 and cov.n_pairs == 2 + 3
    cov = teacher.coverage(SCORES, POS, negs, sample_neg_from_topk=3)
    assert cov.missing_negatives == [("q1", "unscored-deep")] and not cov.ok


def test_coverage_missing_positive_and_short_groups():
    cov = teacher.coverage(SCORES, {"q1": ["p1", "p9"], "q3": ["p3"]}, {"q1": ["n1"]}, 10, 3)
    assert cov.missing_positives == [("q1", "p9"), ("q3", "p3")]
    assert cov.short_queries == [("q1", 1), ("q3", 0)]


@pytest.mark.parametrize("topk,group", [(3, None), (6, 5), (50, 8)])
def test_streamed_file_check_equals_the_check_of_loaded_scores(tmp_path, topk, group):
    # check_files streams the files into int64 keys (bounded memory); it must find what
    # coverage() finds on the loaded dicts: counts, the first missing pairs in query order,
    # short queries; with repeated neg_file qids, duplicates, ids of nothing, two files
    rng = random.Random(topk)
    qids = [f"q{i}" for i in range(40)]
    pos = {q: rng.sample([f"p{j}" for j in range(30)], rng.randint(1, 2)) for q in qids[:30]}
    qrels = write(tmp_path / "qrels.tsv", "".join(f"{q}\t{p}\n" for q in pos for p in pos[q]))
    neg_lines = []
    for q in rng.sample(qids, 35):  # some judged queries get none, others several lines
        for _ in range(rng.randint(1, 2)):
            neg_lines.append(f"{q}\t" + ",".join(f"p{rng.randrange(60)}" for _ in range(4)))
    negs = write(tmp_path / "negs.tsv", "\n".join(neg_lines) + "\n")
    every = [(q, f"p{j}") for q in [*qids, "nobody"] for j in range(61)]
    scored = rng.sample(every, len(every) * 7 // 10)
    a = write(
        tmp_path / "a.txt", "".join(f"{q}\t{p}\t{rng.random():.3f}\n" for q, p in scored[::2])
    )
    b = write(
        tmp_path / "b.txt", "".join(f"{q} {p} [{rng.random():.3f}]\n" for q, p in scored[1::2])
    )
    whole = teacher.coverage(
        teacher.read_teacher_scores([a, b]), io.positives(io.read_qrels(qrels)),
        io.read_neg_file(negs), topk, group,
    )  # fmt: skip
    streamed = teacher.coverage_of_files(f"{a},{b}", qrels, negs, topk, group)
    assert whole.n_missing_positives > 0 and whole.n_missing_negatives > teacher.EXAMPLES
    for f in ("n_queries", "n_pairs", "n_missing_positives", "n_missing_negatives"):
        assert getattr(streamed, f) == getattr(whole, f), f
    assert streamed.short_queries == whole.short_queries
    assert streamed.missing_positives == whole.missing_positives[: teacher.EXAMPLES]
    assert streamed.missing_negatives == whole.missing_negatives[: teacher.EXAMPLES]
    assert streamed.summary() == whole.summary()


def test_file_check_names_the_bad_line_of_a_score_file(tmp_path):
    qrels = write(tmp_path / "qrels.tsv", "q1\tp1\n")
    negs = write(tmp_path / "negs.tsv", "q1\tn1\n")
    scores = write(tmp_path / "s.txt", "q1\tp1\t1.0\nq1\tn1\tnan?\n")
    with pytest.raises(io.InputError, match="s.txt:2: score 'nan\\?' is not a number"):
        teacher.check_files(scores, qrels, negs, 5)


def test_read_teacher_scores_merges_files_and_accepts_retromae_brackets(tmp_path):
    a = write(tmp_path / "a.txt", "q1\tp1\t[3.5]\nq1\tn1\t1.0\n")
    b = write(tmp_path / "b.txt", "q1 n1 2.0\nq2 p2 -1e-3\n")
    assert teacher.read_teacher_scores(f"{a},{b}") == {
        "q1": {"p1": 3.5, "n1": 2.0},
        "q2": {"p2": -0.001},
    }


def test_check_cli_passes_and_files_work_with_retromae_reader(tmp_path):
    qs = write(tmp_path / "train_qrels_score.txt", "q1\tp1\t3.0\nq2\tp2\t2.0\n")
    rs = io.write_scores(
        tmp_path / "train_rerank_score.txt",
        [("q1", "n1", 1.0), ("q1", "p1", 3.0), ("q1", "n2", -1.25), ("q2", "n3", 0.5)],
    )
    assert rs == 4
    rs = str(tmp_path / "train_rerank_score.txt")
    qrels = write(tmp_path / "train_qrels.txt", "q1\tp1\nq2\tp2\n")
    negs = write(tmp_path / "negs.tsv", "q1\tn1,n2\nq2\tn3\n")
    report = tmp_path / "check.json"
    argv = ["check", "--teacher_score_files", f"{qs},{rs}", "--train_qrels", qrels]
    argv += ["--neg_file", negs, "--sample_neg_from_topk", "2", "--report", str(report)]
    assert teacher.main(argv) == 0
    assert '"missing_negative_scores": 0' in report.read_text()
    assert retromae_lookup(f"{qs},{rs}", qrels, negs, 2) == 5


def test_check_cli_names_file_and_first_missing_pair(tmp_path, capsys):
    qs = write(tmp_path / "train_qrels_score.txt", "q1\tp1\t3.0\nq2\tp2\t2.0\n")
    rs = write(tmp_path / "train_rerank_score.txt", "q1\tn1\t1.0\nq2\tn3\t0.5\n")
    qrels = write(tmp_path / "train_qrels.txt", "q1\tp1\nq2\tp2\n")
    negs = write(tmp_path / "negs.tsv", "q1\tn1,n2,n7\nq2\tn3,n4\n")
    argv = ["check", "--teacher_score_files", f"{qs},{rs}", "--train_qrels", qrels]
    assert teacher.main([*argv, "--neg_file", negs, "--sample_neg_from_topk", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {negs}:")
    assert "(qid 'q1', pid 'n2')" in err and "first of 3 pairs without one" in err
    with pytest.raises(KeyError):
        retromae_lookup(f"{qs},{rs}", qrels, negs, 3)
    # the same files are fine when the bi-encoder only samples from the top 1
    assert teacher.main([*argv, "--neg_file", negs, "--sample_neg_from_topk", "1"]) == 0


def test_check_cli_missing_positive_and_too_few_negatives(tmp_path, capsys):
    rs = write(tmp_path / "scores.txt", "q1\tn1\t1.0\nq1\tn2\t0.0\n")
    qrels = write(tmp_path / "train_qrels.txt", "q1\tp1\n")
    negs = write(tmp_path / "negs.tsv", "q1\tn1,n2\n")
    argv = ["check", "--teacher_score_files", rs, "--train_qrels", qrels, "--neg_file", negs]
    assert teacher.main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {qrels}:" in err and "(qid 'q1', pid 'p1')" in err
    rs = write(tmp_path / "scores.txt", "q1\tp1\t2.0\nq1\tn1\t1.0\nq1\tn2\t0.0\n")
    assert teacher.main(argv) == 0
    assert teacher.main([*argv, "--train_group_size", "4"]) == 2
    assert "offers 2 negatives" in capsys.readouterr().err


def test_summary_names_the_depth_and_group_size_verified(tmp_path, caplog):
    qs = write(tmp_path / "s.txt", "q1\tp1\t3.0\nq1\tn1\t1.0\nq1\tn2\t0.0\n")
    qrels = write(tmp_path / "train_qrels.txt", "q1\tp1\n")
    negs = write(tmp_path / "negs.tsv", "q1\tn1,n2\n")
    report = tmp_path / "check.json"
    argv = ["check", "--teacher_score_files", qs, "--train_qrels", qrels, "--neg_file", negs]
    argv += ["--sample_neg_from_topk", "2", "--group_size", "3", "--report", str(report)]
    with caplog.at_level("INFO"):
        assert teacher.main(argv) == 0
    found = json.loads(report.read_text())
    assert (found["sample_neg_from_topk"], found["group_size"]) == (2, 3)
    assert "top 2 of the neg_file, groups of 3" in found["verified_for"]
    assert found["retromae_flags"].endswith("--sample_neg_from_topk 2 --train_group_size 3")
    assert "groups of 3" in caplog.text and "--train_group_size 3" in caplog.text


def test_retromae_bi_encoder_builds_groups_from_our_folders_and_teacher_files(
    tmp_path, tiny_preprocessed, tiny_model_dir, tiny_data
):
    """The seed's last step, done when RetroMAE's bi-encoder data class (reproduced in
    tests/helpers/retromae.py: datasets.load_from_disk + its file formats) builds training
    groups from preprocess's folders and the teacher files `cross_encoder.run --do_predict`
    writes, at the group size and depth the check verified."""
    from helpers.retromae import BiEncoderGroups

    from cross_encoder import run
    from cross_encoder.io.collection import TokenizedCollection

    p, topk, group = tiny_preprocessed, 5, 4
    negs = io.read_neg_file(tiny_data["neg_file"])
    ranking = tmp_path / "train.ranking.tsv"
    io.write_ranking(
        ranking, {q: [(n, 10.0 - r) for r, n in enumerate(ns)] for q, ns in negs.items()}
    )
    neg_file = tmp_path / "train.negs.tsv"
    io.write_neg_file(neg_file, {q: ns[:topk] for q, ns in negs.items()})
    scores = []
    for name, pairs in [("qrels", p / "train_qrels.txt"), ("rerank", ranking)]:
        out = tmp_path / f"train_{name}_score.txt"
        argv = ["--output_dir", str(tmp_path / "m"), "--model_name_or_path", str(tiny_model_dir)]
        argv += ["--do_predict", "--corpus_file", str(p / "corpus"), "--max_len", "48"]
        argv += ["--test_query_file", str(p / "train_query"), "--test_file", str(pairs)]
        argv += ["--prediction_save_path", str(out), "--prediction_topk", str(topk)]
        assert run.main([*argv, "--report_to", "none"]) == 0
        scores.append(str(out))
    files = ",".join(scores)
    check = ["check", "--teacher_score_files", files, "--train_qrels", str(p / "train_qrels.txt")]
    check += ["--neg_file", str(neg_file), "--sample_neg_from_topk", str(topk)]
    assert teacher.main([*check, "--group_size", str(group)]) == 0

    groups = BiEncoderGroups(p, neg_file, files, group, topk)
    queries = TokenizedCollection.load(p / "train_query")
    corpus = TokenizedCollection.load(p / "corpus")
    assert len(groups) == len((p / "train_qrels.txt").read_text().splitlines())
    for i in range(len(groups)):
        qid, query, passages, teacher_scores = groups[i]
        assert query == queries.tokens(qid)
        assert len(passages) == group and len(teacher_scores) == group
        assert all(ids == corpus.tokens(pid) for pid, ids in passages)
        assert all(math.isfinite(s) for s in teacher_scores)
    # a larger group than verified: the check says no, and RetroMAE would draw unscored pairs
    assert teacher.main([*check, "--group_size", str(topk + 2)]) == 2
    with pytest.raises(KeyError):
        BiEncoderGroups(p, neg_file, files, topk + 2, topk)[0]
