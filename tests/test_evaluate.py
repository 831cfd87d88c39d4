import json

from cross_encoder import evaluate


def test_side_by_side_table_and_outputs(tmp_path, capsys):
    qrels = tmp_path / "qrels.dev.tsv"
    qrels.write_text("q1\ta\nq2\tb\n")  # RocketQA 2-column dev qrels
    first = tmp_path / "dev.bm25.tsv"
    first.write_text("q1\tx\t1\t9\nq1\ta\t2\t8\nq2\tb\t1\t5\n")
    scores = tmp_path / "dev_rerank_score.txt"
    scores.write_text("q1\tx\t[0.1]\nq1\ta\t[2.0]\nq2\tb\t1.0\n")  # RetroMAE's brackets too
    out = tmp_path / "m.json"
    rc = evaluate.main(
        ["--score_file", str(scores), "--qrels_file", str(qrels)]
        + ["--first_stage_file", str(first), "--output_json", str(out)]
        + ["--metrics", "MRR@10,Recall@1", "--per_query_file", str(tmp_path / "pq.tsv")]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["runs"]["first stage"]["MRR@10"] == 0.75
    assert res["runs"]["reranked"]["MRR@10"] == 1.0
    assert res["runs"]["reranked"]["Recall@1"] == 1.0
    table = capsys.readouterr().out
    assert "first stage" in table and "reranked" in table and "MRR@10" in table
    ranked = (tmp_path / "dev_rerank_score.txt.ranked_results").read_text().splitlines()
    assert ranked[:2] == ["q1\ta\t1", "q1\tx\t2"]
    pq = (tmp_path / "pq.tsv").read_text().splitlines()
    assert pq[0] == "run\tmetric\tqid\tvalue" and len(pq) == 1 + 2 * 2 * 2


def test_seed_command_line(tmp_path, capsys):
    """`python test.py --score_file dev_rerank_score.txt --qrels_file qrels.dev.tsv`."""
    qrels = tmp_path / "qrels.dev.tsv"
    qrels.write_text("q1\ta\n")
    scores = tmp_path / "dev_rerank_score.txt"
    scores.write_text("q1\ta\t1.0\n")
    assert evaluate.main(["--score_file", str(scores), "--qrels_file", str(qrels)]) == 0
    assert "reranked" in capsys.readouterr().out


def test_run_and_qrels_that_do_not_match(tmp_path, capsys):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\ta\n")
    scores = tmp_path / "s.txt"
    scores.write_text("other\ta\t1.0\n")
    assert evaluate.main(["--score_file", str(scores), "--qrels_file", str(qrels)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {scores}: ranks none of the 1 judged queries")


def test_fused_row_is_named_by_the_fusion_chosen_on_dev(tmp_path, capsys):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\ta\n")
    fused = tmp_path / "fused.tsv"
    fused.write_text("q1\ta\t1\t2\nq1\tx\t2\t1\n")
    fusion = tmp_path / "fusion.json"
    fusion.write_text(json.dumps({"describe": "rrf k=60, cross-encoder weight 0.5"}))
    argv = ["--qrels_file", str(qrels), "--fused_file", str(fused), "--metrics", "MRR@10"]
    assert evaluate.main([*argv, "--fusion_file", str(fusion)]) == 0
    assert "fused (rrf k=60, cross-encoder weight 0.5; chosen on dev)" in capsys.readouterr().out
    fusion.write_text("[]")
    assert evaluate.main([*argv, "--fusion_file", str(fusion)]) == 2
    assert "not a fusion file" in capsys.readouterr().err


def _thirty(tmp_path):
    """30 judged queries; the first stage ranks the relevant passage second, the reranker
    first."""
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("".join(f"q{i}\tp{i}\n" for i in range(30)))
    first = tmp_path / "first.tsv"
    first.write_text("".join(f"q{i}\tx{i}\t1\t2\nq{i}\tp{i}\t2\t1\n" for i in range(30)))
    scores = tmp_path / "scores.tsv"
    scores.write_text("".join(f"q{i}\tx{i}\t0.1\nq{i}\tp{i}\t0.9\n" for i in range(30)))
    return qrels, first, scores


def test_rows_are_tested_against_the_first_stage(tmp_path, capsys):
    qrels, first, scores = _thirty(tmp_path)
    out = tmp_path / "m.json"
    argv = ["--qrels_file", str(qrels), "--first_stage_file", str(first), "--metrics", "MRR@10"]
    argv += ["--score_file", str(scores), "--run", f"copy={first}", "--output_json", str(out)]
    argv += ["--tuned", "reranked=checkpoint selected on 10 of these queries"]
    assert evaluate.main(argv) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert [ln for ln in lines if ln.startswith("reranked †")][0].endswith("1.0000*")
    assert [ln for ln in lines if ln.startswith("copy")][0].endswith("0.5000")
    assert "* differs from 'first stage' at p < 0.05: two-sided paired t-test over 30" in table
    assert "Holm-corrected over 2 rows" in table
    assert "† reranked: checkpoint selected on 10 of these queries" in table
    res = json.loads(out.read_text())
    s = res["significance"]
    assert s["baseline"] == "first stage" and s["n_resamples"] == 10_000
    r = s["rows"]["reranked"]["MRR@10"]
    assert r["diff"] == 0.5 and r["ci"] == [0.5, 0.5] and r["significant"]
    assert r["p_perm"] < 0.001 and (r["wins"], r["ties"], r["losses"]) == (30, 0, 0)
    c = s["rows"]["copy"]["MRR@10"]
    assert c["p_t"] == 1.0 and not c["significant"]
    assert res["tuned_on_these_queries"] == {
        "reranked": "checkpoint selected on 10 of these queries"
    }


def test_seed_evaluate_with_a_baseline_file(tmp_path, capsys):
    qrels, first, scores = _thirty(tmp_path)
    argv = ["--score_file", str(scores), "--qrels_file", str(qrels), "--metrics", "MRR@10"]
    assert evaluate.main(argv) == 0
    alone = capsys.readouterr().out
    assert "differs" not in alone and "Paired" not in alone  # one score file: as before
    assert evaluate.main([*argv, "--baseline_file", str(first)]) == 0
    table = capsys.readouterr().out
    assert "differs from 'baseline'" in table and "+0.5000" in table
    assert evaluate.main([*argv, "--baseline", "nope"]) == 2
    assert "--baseline 'nope' is none of the rows" in capsys.readouterr().err
