"""cross_encoder.compare on results folders written by the real evaluate CLI."""

import json

from cross_encoder import compare, evaluate


def _run(root, name, qrels, good: int, n: int = 30):
    """A results folder whose reranker puts the relevant passage first on `good` of n."""
    folder = root / name
    (folder / "eval").mkdir(parents=True)
    first = root / f"{name}.first.tsv"
    first.write_text("".join(f"q{i}\tx{i}\t1\t2\nq{i}\tp{i}\t2\t1\n" for i in range(n)))
    scores = root / f"{name}.scores.tsv"
    scores.write_text(
        "".join(f"q{i}\tx{i}\t0.5\nq{i}\tp{i}\t{1.0 if i < good else 0.1}\n" for i in range(n))
    )
    argv = ["--score_file", str(scores), "--first_stage_file", str(first)]
    argv += ["--qrels_file", str(qrels), "--metrics", "MRR@10,nDCG@10", "--no_ranked_results"]
    argv += ["--output_json", str(folder / "eval" / "dev.metrics.json")]
    argv += ["--per_query_file", str(folder / "eval" / "dev.per_query.tsv")]
    assert evaluate.main(argv) == 0
    return folder


def _qrels(path, n=30):
    path.write_text("".join(f"q{i}\tp{i}\n" for i in range(n)))
    return path


def test_two_runs_side_by_side(tmp_path, capsys):
    qrels = _qrels(tmp_path / "qrels.tsv")
    a = _run(tmp_path, "a", qrels, good=5)
    b = _run(tmp_path, "b", qrels, good=30)
    c = _run(tmp_path, "c", qrels, good=5)
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert compare.main([str(a), str(b), str(c), "--output_dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dev: 30 queries judged by every run" in text
    assert "differs from 'a' at p < 0.05" in text and "Holm-corrected over 2 rows" in text
    line_b = [ln for ln in text.splitlines() if ln.startswith("b ")][0]
    assert line_b.endswith("1.0000*")
    res = json.loads((out / "compare.json").read_text())
    sig = res["splits"]["dev"]["significance"]["rows"]
    assert sig["b"]["MRR@10"]["wins"] == 25 and sig["b"]["MRR@10"]["significant"]
    assert sig["c"]["MRR@10"]["p_t"] == 1.0 and not sig["c"]["MRR@10"]["significant"]
    assert (out / "dev.table.txt").read_text() in text
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    # the same p twice (the randomization test is seeded)
    assert compare.main([str(a), str(b), "--baseline", "b", "--output_dir", str(out)]) == 0
    p1 = json.loads((out / "compare.json").read_text())["splits"]["dev"]["significance"]
    assert compare.main([str(a), str(b), "--baseline", "b", "--output_dir", str(out)]) == 0
    p2 = json.loads((out / "compare.json").read_text())["splits"]["dev"]["significance"]
    assert p1 == p2 and p1["baseline"] == "b"


def test_runs_on_other_qrels_stop_with_one_line(tmp_path, capsys):
    a = _run(tmp_path, "a", _qrels(tmp_path / "q1.tsv"), good=5)
    other = tmp_path / "q2.tsv"
    other.write_text("".join(f"q{i}\tx{i}\n" for i in range(30)))  # same queries, other labels
    b = _run(tmp_path, "b", other, good=5)
    fewer = _run(tmp_path, "fewer", _qrels(tmp_path / "q3.tsv", n=20), good=5, n=20)
    capsys.readouterr()
    assert compare.main([str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: runs 'a' and 'b' were evaluated on different dev qrels")
    assert "\n" not in err
    for meta in (a, fewer):  # folders written before evaluate recorded the qrels' sha256
        m = meta / "eval" / "dev.metrics.json"
        m.write_text(
            json.dumps({k: v for k, v in json.loads(m.read_text()).items() if k != "qrels_sha256"})
        )
    assert compare.main([str(a), str(fewer)]) == 2
    err = capsys.readouterr().err.strip()
    assert "runs 'a' and 'fewer' judged different dev query sets (30 vs 20 queries" in err
    assert compare.main([str(a)]) == 2
    assert compare.main([str(a), str(tmp_path)]) == 2
    assert "not a results folder" in capsys.readouterr().err
