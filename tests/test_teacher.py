"""Teacher score files for RetroMAE's bi-encoder and the check that they cover every pair
it can sample (a missing one is a KeyError there)."""

import math
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
