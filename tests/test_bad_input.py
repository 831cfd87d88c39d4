"""Bad input, for every reader and CLI: one line naming the file (and line) and what to do,
exit status 2, no traceback, no output left behind. Where a subset is normal (qrels judging
more queries than the query file holds, a ranking that covers part of the judged queries),
a warning with counts and the file name, and the run goes on.

The CLIs run in-process (``main([...])``); a few run as subprocesses to prove that no
traceback reaches the user; config typos go through ``snakemake -n``."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import snakemake_cmd, workflow_env, write_tiny_config

from cross_encoder import evaluate, preprocess, run
from cross_encoder.data import download
from cross_encoder.first_stage import bm25, dense, fusion, negatives

# --------------------------------------------------------------------------- good files


@pytest.fixture
def files(tmp_path, story_data) -> dict[str, Path]:
    """Valid inputs in a folder of their own (so each case can spoil one of them)."""
    d = tmp_path / "in"
    d.mkdir()
    out = {}
    for key, path in story_data.items():
        out[key] = d / path.name
        out[key].write_bytes(path.read_bytes())
    dev = [line.split("\t")[0] for line in story_data["dev_queries"].read_text().splitlines()]
    pos = dict(line.split("\t") for line in story_data["dev_qrels"].read_text().splitlines())
    ranking = "".join(
        f"{q}\t{p}\t{r}\t{10.0 - r}\n"
        for q in dev
        for r, p in enumerate([pos[q], *[str(i) for i in range(4) if str(i) != pos[q]]], 1)
    )
    out["ranking"] = d / "dev.ranking.tsv"
    out["ranking"].write_text(ranking)
    out["ranking2"] = d / "dev.ranking2.tsv"
    out["ranking2"].write_text(ranking)
    out["scores"] = d / "dev.scores.tsv"
    rows = (line.split("\t") for line in ranking.splitlines())
    out["scores"].write_text("".join(f"{q}\t{p}\t{s}\n" for q, p, _, s in rows))
    train = [line.split("\t")[0] for line in story_data["train_queries"].read_text().splitlines()]
    out["neg_file"] = d / "train.negs.tsv"
    out["neg_file"].write_text("".join(f"{q}\t5,6,7,8\n" for q in train))
    out["train_pairs"] = d / "train_qrels.txt"
    out["train_pairs"].write_text(
        "".join(
            f"{c[0]}\t{c[2]}\n"
            for c in (x.split("\t") for x in story_data["train_qrels"].read_text().splitlines())
        )
    )
    return out


@pytest.fixture
def dense_index(tmp_path) -> Path:
    import numpy as np

    d = tmp_path / "dense_index"
    dense.save_index(d, np.eye(4, 8, dtype=np.float32), ["0", "1", "2", "3"])
    return d


# --------------------------------------------------------------------------- the CLIs


def cli_args(name, f, o, model, tok, didx):
    """(main, argv, outputs that must not exist after a failure) of each CLI."""
    if name == "preprocess":
        argv = ["--tokenizer_name", model, "--max_seq_length", "16", "--output_dir", o / "tok"]
        argv += ["--corpus_file", f["corpus"], "--train_query_file", f["train_queries"]]
        argv += ["--dev_query_file", f["dev_queries"], "--train_qrels_file", f["train_qrels"]]
        return preprocess.main, argv, [o / "tok"]
    if name == "bm25":
        argv = ["--corpus_file", f["corpus"], "--query_file", f["train_queries"], "--depth", "5"]
        argv += ["--qrels_file", f["train_qrels"], "--index_dir", o / "idx"]
        argv += ["--output_ranking", o / "r.tsv", "--output_neg_file", o / "n.tsv"]
        return bm25.main, argv, [o / "idx", o / "r.tsv", o / "n.tsv"]
    if name == "dense_encode":
        argv = ["encode", "--corpus_file", f["corpus"], "--index_dir", o / "didx"]
        return dense.main, argv, [o / "didx"]
    if name == "dense_search":
        argv = ["search", "--index_dir", didx, "--query_file", f["dev_queries"]]
        argv += ["--output_ranking", o / "dr.tsv"]
        return dense.main, argv, [o / "dr.tsv"]
    if name == "fusion":
        argv = ["--ranking", f["ranking"], "--ranking", f["ranking2"]]
        argv += ["--output_ranking", o / "f.tsv"]
        return fusion.main, argv, [o / "f.tsv"]
    if name == "negatives":
        argv = ["--ranking_file", f["ranking"], "--qrels_file", f["dev_qrels"]]
        argv += ["--output_file", o / "n.tsv"]
        return negatives.main, argv, [o / "n.tsv"]
    common = ["--model_name_or_path", model, "--output_dir", o / "w", "--max_len", "48"]
    common += ["--report_to", "none", "--corpus_file", tok / "corpus"]
    if name == "run_predict":
        argv = common + ["--do_predict", "--test_query_file", tok / "dev_query"]
        argv += ["--test_file", f["ranking"], "--prediction_save_path", o / "s.tsv"]
        return run.main, argv, [o / "s.tsv"]
    if name == "run_train":
        argv = common + ["--do_train", "--train_query_file", tok / "train_query"]
        argv += ["--train_qrels", f["train_pairs"], "--neg_file", f["neg_file"]]
        argv += ["--max_steps", "1", "--train_group_size", "3", "--final_model_dir", o / "m"]
        return run.main, argv, [o / "m", o / "w" / "model.safetensors"]
    if name == "evaluate":
        argv = ["--score_file", f["scores"], "--qrels_file", f["dev_qrels"]]
        argv += ["--output_json", o / "m.json", "--table_file", o / "t.txt"]
        return (
            evaluate.main,
            argv,
            [o / "m.json", o / "t.txt", Path(f"{f['scores']}.ranked_results")],
        )
    raise KeyError(name)


# which input files each CLI reads
READS = {
    "preprocess": ["corpus", "train_queries", "dev_queries", "train_qrels"],
    "bm25": ["corpus", "train_queries", "train_qrels"],
    "dense_encode": ["corpus"],
    "dense_search": ["dev_queries"],
    "fusion": ["ranking"],
    "negatives": ["ranking", "dev_qrels"],
    "run_predict": ["ranking"],
    "run_train": ["neg_file", "train_pairs"],
    "evaluate": ["scores", "dev_qrels"],
}


def call(name, files, tmp_path, tiny_model_dir, story_preprocessed, dense_index):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    main, argv, outputs = cli_args(
        name, files, out, tiny_model_dir, story_preprocessed, dense_index
    )
    rc = main([str(a) for a in argv])
    return rc, outputs


def assert_clean_failure(rc, capsys, outputs, path: Path, pattern: str):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err
    assert str(path) in last, last
    assert re.search(pattern, last), last
    for p in outputs:
        assert not Path(p).exists(), f"{p} left behind after a failure"


@pytest.fixture
def ctx(files, tmp_path, tiny_model_dir, story_preprocessed, dense_index):
    return lambda name: call(name, files, tmp_path, tiny_model_dir, story_preprocessed, dense_index)


# --------------------------------------------------------------------------- every file x 3


PAIRS = [(cli, key) for cli, keys in READS.items() for key in keys]


@pytest.mark.parametrize("cli,key", PAIRS, ids=[f"{c}-{k}" for c, k in PAIRS])
@pytest.mark.parametrize("case", ["missing", "empty", "non_utf8"])
def test_unreadable_inputs(cli, key, case, files, ctx, capsys):
    path = files[key]
    if case == "missing":
        path.unlink()
        pattern = "no such file"
    elif case == "empty":
        path.write_text("")
        pattern = r": is empty: expected"
    else:
        first = path.read_bytes().splitlines()[0]
        path.write_bytes(first + b"\n" + b"42\t\xff\xfe caf\xe9\n")
        pattern = r":2: not valid UTF-8 .*; re-encode the file as UTF-8"
    rc, outputs = ctx(cli)
    assert_clean_failure(rc, capsys, outputs, path, pattern)


# --------------------------------------------------------------------------- content errors

CASES = [
    # (id, cli, file, content, pattern)
    ("corpus-4-columns", "preprocess", "corpus", "1\ta\tb\tc\n", r":1: expected 2 or 3 tab"),
    ("corpus-4-columns-bm25", "bm25", "corpus", "1\ta\tb\tc\n", r":1: expected 2 or 3 tab"),
    ("corpus-dup", "preprocess", "corpus", "1\tx\n1\ty\n", r":2: duplicate passage id '1'"),
    ("corpus-dup-bm25", "bm25", "corpus", "1\tx\n1\ty\n", r":2: duplicate passage id '1'"),
    ("corpus-dup-dense", "dense_encode", "corpus", "1\tx\n1\ty\n", r":2: duplicate passage"),
    ("corpus-no-text", "preprocess", "corpus", "1\tT\tx\n2\t\t \n", r":2: passage '2' has no"),
    ("corpus-no-text-bm25", "bm25", "corpus", "1\t\t \n", r":1: passage '1' has no text"),
    ("queries-1-column", "preprocess", "train_queries", "100 no tab\n", r":1: expected 2 tab"),
    ("queries-dup", "preprocess", "dev_queries", "9\ta\n9\tb\n", r":2: duplicate query id '9'"),
    ("queries-dup-bm25", "bm25", "train_queries", "9\ta\n9\tb\n", r":2: duplicate query id"),
    ("queries-dup-dense", "dense_search", "dev_queries", "9\ta\n9\tb\n", r":2: duplicate query"),
    ("query-no-text", "preprocess", "train_queries", "100\t \n", r":1: query '100' has no text"),
    ("qrels-5-columns", "preprocess", "train_qrels", "1 2 3 4 5\n", r":1: expected qrels"),
    ("qrels-rel-not-int", "bm25", "train_qrels", "100\t0\t0\tyes\n", r":1: relevance 'yes' is"),
    ("qrels-no-positive", "negatives", "dev_qrels", "916\t0\t0\t0\n", r"no positive judgement"),
    ("qrels-unknown-queries", "preprocess", "train_qrels", "7\t0\t0\t1\n", r"none of its 1 query"),
    ("qrels-unknown-q-bm25", "bm25", "train_qrels", "7\t0\t0\t1\n", r"none of its 1 judged"),
    ("qrels-unknown-passages", "preprocess", "train_qrels", "100\t0\tx9\t1\n", r"none of its 1 ju"),
    ("ranking-rank-not-int", "fusion", "ranking", "916\t0\tone\t1.0\n", r":1: rank 'one' is not"),
    ("ranking-rank-not-int-n", "negatives", "ranking", "916\t0\t1.5\t1\n", r":1: rank '1.5' is no"),
    ("ranking-rank-0", "run_predict", "ranking", "916\t0\t0\t1.0\n", r":1: rank 0 must be >= 1"),
    ("ranking-5-columns", "fusion", "ranking", "a b c d e\n", r":1: expected a ranking"),
    ("ranking-unknown-queries", "negatives", "ranking", "7\t0\t1\t1\n", r"ranks none of the"),
    ("ranking-unknown-q-run", "run_predict", "ranking", "7\t0\t1\t1\n", r"none of its query ids"),
    ("ranking-unknown-p-run", "run_predict", "ranking", "916\tx\t1\t1\n", r"none of its passage"),
    ("ranking-score-nan", "run_predict", "ranking", "916\t0\t1\tnan\n", r":1: score is NaN"),
    ("neg-3-columns", "run_train", "neg_file", "100\t1\t2\n", r":1: expected 'qid<TAB>pid"),
    ("neg-unknown-passages", "run_train", "neg_file", "100\tx1,x2\n", r"none of its passage ids"),
    ("train-qrels-unknown-q", "run_train", "train_pairs", "7\t0\n", r"none of its query ids"),
    ("scores-not-number", "evaluate", "scores", "916\t0\tabc\n", r":1: score 'abc' is not a n"),
    ("scores-2-columns", "evaluate", "scores", "916 0 1 2 3\n", r":1: expected 'qid pid score"),
    ("scores-unknown-queries", "evaluate", "scores", "7\t0\t1.0\n", r"ranks none of the 8 judged"),
    ("eval-qrels-rel-not-int", "evaluate", "dev_qrels", "916\t0\t3\tx\n", r":1: relevance 'x'"),
]


@pytest.mark.parametrize(
    "cli,key,content,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_content(cli, key, content, pattern, files, ctx, capsys):
    files[key].write_text(content)
    rc, outputs = ctx(cli)
    assert_clean_failure(rc, capsys, outputs, files[key], pattern)


@pytest.mark.parametrize("case", ["no_folder", "empty_folder"])
def test_missing_tokenized_folder(
    case, files, capsys, tmp_path, tiny_model_dir, story_preprocessed
):
    """run with a tokenized folder that preprocess never wrote: say to run preprocess."""
    corpus = tmp_path / "tok" / "corpus"
    if case == "empty_folder":
        corpus.mkdir(parents=True)
    argv = ["--model_name_or_path", str(tiny_model_dir), "--output_dir", str(tmp_path / "w")]
    argv += ["--do_predict", "--corpus_file", str(corpus), "--report_to", "none"]
    argv += ["--test_query_file", str(story_preprocessed / "dev_query")]
    argv += ["--test_file", str(files["ranking"]), "--prediction_save_path", str(tmp_path / "s")]
    rc = run.main(argv)
    pattern = "no such file or folder" if case == "no_folder" else "run `python -m cross_encoder"
    assert_clean_failure(rc, capsys, [tmp_path / "s"], corpus, pattern)


# --------------------------------------------------------------------------- normal subsets


SUBSETS = [
    # (id, cli, file, line to append, warning pattern, output that must exist)
    ("qrels-extra-query", "preprocess", "train_qrels", "777\t0\t0\t1\n", r"1 of 17 judged queries"),
    ("qrels-extra-passage", "preprocess", "train_qrels", "100\t0\tx9\t1\n", r"1 of 17 judged pass"),
    ("qrels-extra-query-bm25", "bm25", "train_qrels", "777\t0\t0\t1\n", r"1 of 17 judged queries"),
    ("qrels-more-than-ranked", "negatives", "dev_qrels", "777\t0\n", r"ranks 8 of 9 judged"),
    ("ranking-unknown-pid", "run_predict", "ranking", "916\tx9\t6\t1.0\n", r"1 passage ids are"),
    ("eval-subset", "evaluate", "dev_qrels", "777\t0\n", r"ranks 8 of 9 judged queries"),
]


@pytest.mark.parametrize(
    "cli,key,extra,pattern", [c[1:] for c in SUBSETS], ids=[c[0] for c in SUBSETS]
)
def test_subset_warns_and_goes_on(cli, key, extra, pattern, files, ctx, caplog):
    with files[key].open("a") as f:
        f.write(extra)
    with caplog.at_level(logging.WARNING):
        rc, outputs = ctx(cli)
    assert rc == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    hits = [w for w in warnings if str(files[key]) in w]
    assert hits, warnings
    assert any(re.search(pattern, w) for w in hits), hits
    assert any(Path(p).exists() for p in outputs)


# --------------------------------------------------------------------------- what must work


def test_crlf_bom_empty_titles_work_like_plain_files(files, tmp_path, tiny_model_dir):
    from cross_encoder.io.collection import TokenizedCollection

    def tok(suffix, mangle):
        for key in ("corpus", "train_queries", "dev_queries", "train_qrels"):
            src = files[key]
            dst = src.with_name(f"{suffix}.{src.name}")
            dst.write_bytes(mangle(src.read_bytes()))
        out = tmp_path / suffix
        argv = ["--tokenizer_name", str(tiny_model_dir), "--output_dir", str(out)]
        argv += ["--max_seq_length", "16", "--use_title"]
        for flag, key in [
            ("--corpus_file", "corpus"),
            ("--train_query_file", "train_queries"),
            ("--dev_query_file", "dev_queries"),
            ("--train_qrels_file", "train_qrels"),
        ]:
            argv += [flag, str(files[key].with_name(f"{suffix}.{files[key].name}"))]
        assert preprocess.main(argv) == 0
        return TokenizedCollection.load(out / "corpus"), (out / "train_qrels.txt").read_bytes()

    plain, qrels = tok("plain", lambda b: b)
    dos, dos_qrels = tok("dos", lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"))
    assert "" in [line.split("\t")[1] for line in files["corpus"].read_text().splitlines()]
    assert plain.ids == dos.ids
    assert (plain.values == dos.values).all() and (plain.offsets == dos.offsets).all()
    assert qrels == dos_qrels


def test_retromae_bracket_scores_evaluate_like_plain(files, tmp_path, capsys):
    brackets = tmp_path / "brackets.tsv"
    lines = files["scores"].read_text().splitlines()
    brackets.write_text("".join(f"{q}\t{p}\t[{s}]\n" for q, p, s in (x.split("\t") for x in lines)))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for score, out in [(files["scores"], a), (brackets, b)]:
        argv = ["--score_file", str(score), "--qrels_file", str(files["dev_qrels"])]
        assert evaluate.main([*argv, "--output_json", str(out), "--no_ranked_results"]) == 0
    assert a.read_text() == b.read_text()


# --------------------------------------------------------------------------- download


@pytest.mark.parametrize("case", ["missing_archive", "empty_archive", "md5_mismatch", "bad_name"])
def test_download_bad_input(case, tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    out = tmp_path / "beir" / "tiny"
    argv = ["--dataset", "tiny", "--output_dir", str(out), "--quiet"]
    argv += ["--base_url", mirror.as_uri()]
    if case == "empty_archive":
        (mirror / "tiny.zip").write_bytes(b"")
        argv += ["--md5", hashlib.md5(b"").hexdigest()]
        pattern = "tiny"
    elif case == "md5_mismatch":
        (mirror / "tiny.zip").write_bytes(b"PK not really")
        argv += ["--md5", "0" * 32]
        pattern = "md5 mismatch for tiny.zip"
    elif case == "bad_name":
        argv[1] = "../etc"
        pattern = "invalid dataset name"
    else:
        argv += ["--md5", "0" * 32]
        pattern = "tiny"
    assert download.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert pattern in err
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == [] if out.parent.exists() else True


# --------------------------------------------------------------------------- subprocesses


MODULE_PATH = {"bm25": "first_stage.bm25"}


@pytest.mark.parametrize(
    "module,spoil",
    [
        ("preprocess", "corpus"),
        ("bm25", "train_queries"),
        ("evaluate", "scores"),
    ],
)
def test_no_traceback_in_a_real_process(module, spoil, files, tmp_path, tiny_model_dir):
    files[spoil].write_bytes(files[spoil].read_bytes() + b"dup\t\xff\n")
    _, argv, outputs = cli_args(module, files, tmp_path / "out", tiny_model_dir, tmp_path, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", f"cross_encoder.{MODULE_PATH.get(module, module)}", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {files[spoil]}:") and "not valid UTF-8" in last, last
    assert not any(Path(p).exists() for p in outputs)


# --------------------------------------------------------------------------- config typos


def dry_run(tmp_path, config):
    proc = subprocess.run(
        snakemake_cmd(tmp_path / "w", config, "-n", "eval"),
        capture_output=True,
        text=True,
        env=workflow_env(),
        timeout=300,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in text
    return text


@pytest.mark.slow
def test_config_typos_through_snakemake_dry_run(tmp_path, story_data, tiny_model_dir):
    """Every mistake of the config in one line each: unknown keys (top level and nested,
    with a did-you-mean), a wrong type, a value out of range; the file to fix is named and
    the schema is not dumped."""
    config = write_tiny_config(tmp_path / "c.yaml", story_data, tiny_model_dir, trian={"x": 1})
    c = yaml.safe_load(config.read_text())
    c["train"]["lerning_rate"] = 1e-4
    c["train"]["seed"] = "abc"
    c["first_stage"]["depth"] = 0
    config.write_text(yaml.safe_dump(c))
    text = dry_run(tmp_path, config)
    for pattern in [
        r"top level: unknown key 'trian'; did you mean 'train'\?",
        r"train: unknown key 'lerning_rate'; did you mean 'learning_rate'\?",
        r"train\.seed: 'abc' is not of type 'integer'",
        r"first_stage\.depth: 0 is less than the minimum of 1",
        re.escape(f"config error in {config}"),
    ]:
        assert re.search(pattern, text), (pattern, text)
    assert len(text) < 2500, text  # one message, not the whole schema


@pytest.mark.slow
def test_config_missing_data_file_through_snakemake_dry_run(tmp_path, story_data, tiny_model_dir):
    config = write_tiny_config(tmp_path / "c.yaml", story_data, tiny_model_dir)
    c = yaml.safe_load(config.read_text())
    c["data"]["corpus"] = str(tmp_path / "no" / "corpus.tsv")
    config.write_text(yaml.safe_dump(c))
    text = dry_run(tmp_path, config)
    assert "Missing input files" in text and str(tmp_path / "no" / "corpus.tsv") in text
