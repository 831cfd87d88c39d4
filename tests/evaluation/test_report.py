"""Report figures from tiny evaluate outputs and a trainer_state.json."""

import json

import pytest

from cross_encoder.evaluation import report
from cross_encoder.io import InputError


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


@pytest.fixture
def eval_files(tmp_path):
    runs = {
        "first stage": {"nDCG@10": 0.5, "MRR@10": 0.4, "Recall@100": 0.9},
        "reranked": {"nDCG@10": 0.6, "MRR@10": 0.55, "Recall@100": 0.9},
    }
    m = tmp_path / "dev.metrics.json"
    m.write_text(json.dumps({"n_queries": 3, "runs": runs}))
    pq = tmp_path / "dev.per_query.tsv"
    rows = ["run\tmetric\tqid\tvalue"]
    for run, vals in {"first stage": [0.2, 0.5, 1.0], "reranked": [0.6, 0.5, 0.7]}.items():
        for i, v in enumerate(vals):
            rows.append(f"{run}\tnDCG@10\tq{i}\t{v}")
            rows.append(f"{run}\tMRR@10\tq{i}\t{v}")
    pq.write_text("\n".join(rows) + "\n")
    return m, pq


def test_metrics_plot_and_table(tmp_path, eval_files):
    m, _ = eval_files
    rc = report.main(
        [
            "metrics",
            "--metrics",
            f"dev={m}",
            "--metrics",
            f"test={m}",
            "--plot",
            str(tmp_path / "m.png"),
            "--table",
            str(tmp_path / "m.tsv"),
        ]
    )
    assert rc == 0
    _png(tmp_path / "m.png")
    lines = (tmp_path / "m.tsv").read_text().splitlines()
    assert lines[0] == "split\tstage\tnDCG@10\tMRR@10\tRecall@100"
    assert "dev\treranked\t0.6000\t0.5500\t0.9000" in lines and len(lines) == 5


def test_delta_histogram_counts(tmp_path, eval_files):
    _, pq = eval_files
    counts = report.delta_figure([("dev", str(pq))], str(tmp_path / "d.png"))
    _png(tmp_path / "d.png")
    assert counts["dev"]["reranked"] == {"better": 1, "same": 1, "worse": 1}


def test_loss_curve_from_trainer_state(tmp_path):
    state = {
        "log_history": [
            {"step": 10, "loss": 2.0, "learning_rate": 1e-5, "epoch": 0.1},
            {"step": 20, "loss": 1.5, "learning_rate": 2e-5, "epoch": 0.2},
            {"step": 20, "train_runtime": 3.0, "epoch": 0.2},
        ]
    }
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state))
    assert report.loss_figure(str(path), str(tmp_path / "l.png")) == 2
    _png(tmp_path / "l.png")
    assert (
        report.main(["loss", "--trainer_state", str(path), "--plot", str(tmp_path / "l2.png")]) == 0
    )


def test_dev_selection_curve_is_plotted_under_the_loss(tmp_path):
    history = [
        {"step": 10, "loss": 2.0, "learning_rate": 1e-5},
        {"step": 10, "eval_nDCG@10": 0.5, "eval_MRR@10": 0.4, "eval_runtime": 3.0},
        {"step": 20, "loss": 1.5, "learning_rate": 2e-5},
        {"step": 20, "eval_nDCG@10": 0.6, "eval_MRR@10": 0.5, "eval_runtime": 3.1},
    ]
    assert report.dev_curve(history) == {
        "nDCG@10": [(10, 0.5), (20, 0.6)],
        "MRR@10": [(10, 0.4), (20, 0.5)],
    }
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"log_history": history, "best_global_step": 20}))
    assert report.loss_figure(str(path), str(tmp_path / "l.png")) == 2
    _png(tmp_path / "l.png")


def test_bad_inputs_say_which_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="x.json"):
        report.loss_figure(str(bad), str(tmp_path / "l.png"))
    assert (
        report.main(["metrics", "--metrics", f"dev={bad}", "--plot", str(tmp_path / "m.png")]) == 2
    )


def test_significance_figure_from_evaluate_outputs(tmp_path):
    from cross_encoder import evaluate

    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("".join(f"q{i}\tp{i}\n" for i in range(12)))
    first = tmp_path / "first.tsv"
    first.write_text("".join(f"q{i}\tx{i}\t1\t2\nq{i}\tp{i}\t2\t1\n" for i in range(12)))
    scores = tmp_path / "scores.tsv"
    scores.write_text("".join(f"q{i}\tx{i}\t{i % 3}\nq{i}\tp{i}\t1.5\n" for i in range(12)))
    m, pq = tmp_path / "dev.metrics.json", tmp_path / "dev.per_query.tsv"
    argv = ["--score_file", str(scores), "--first_stage_file", str(first)]
    argv += ["--qrels_file", str(qrels), "--metrics", "MRR@10,nDCG@10"]
    argv += ["--output_json", str(m), "--per_query_file", str(pq), "--tuned", "reranked=x"]
    assert evaluate.main(argv) == 0
    plot = tmp_path / "sig.png"
    argv = ["significance", "--metrics", f"dev={m}", "--per_query", f"dev={pq}"]
    assert report.main([*argv, "--plot", str(plot)]) == 0
    _png(plot)
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"n_queries": 1, "runs": {"reranked": {}}}))
    argv = ["significance", "--metrics", f"dev={bare}", "--per_query", f"dev={pq}"]
    assert report.main([*argv, "--plot", str(plot)]) == 2
