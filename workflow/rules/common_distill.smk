# Settings and input functions of the distillation stages (teacher.smk, distill.smk),
# kept out of common.smk so that the distillation can be added or removed as a unit.

TEACHER = config["teacher"]
TEACHER_DIR = OUT / "teacher"


def teacher_topk():
    """Depth of the scored train ranking (= sample_neg_from_topk of the bi-encoder)."""
    return TEACHER["topk"] or TRAIN["sample_neg_from_topk"]


def teacher_scored_pairs(wildcards):
    """What a teacher_scores job scores: every train positive (the tokenized train qrels)
    or the train ranking."""
    if wildcards.kind == "qrels":
        return str(OUT / "tokenized" / "train_qrels.txt")
    return ranking_file("train")


def teacher_predict_flags(wildcards):
    """Scoring settings of a teacher_scores job: the positives without --prediction_topk
    (cross_encoder.run's default depth), the ranking to teacher_topk(); both at
    train.max_len, the length the cross-encoder was trained at (not rerank.max_len); in full
    precision unless teacher.quantize (distillation wants the scores' full resolution).
    """
    topk = teacher_topk() if wildcards.kind == "rerank" else None
    # full resolution unless teacher.quantize asks for int8
    return with_quantize(
        predict_flags(topk, TRAIN["max_len"]), config["teacher"]["quantize"]
    )


def teacher_files():
    return {
        "qrels_score": str(TEACHER_DIR / "train_qrels_score.txt"),
        "rerank_score": str(TEACHER_DIR / "train_rerank_score.txt"),
        "negs": str(TEACHER_DIR / "train.negs.tsv"),
        "check": str(TEACHER_DIR / "check.json"),
    }


def print_teacher_summary(paths, log):
    """Where the teacher files are and what the check found, for the console and the log."""
    import json

    found = json.loads(Path(paths["check"]).read_text())
    lines = [
        "teacher scores (RetroMAE --teacher_score_files):",
        f"  {paths['qrels_score']},{paths['rerank_score']}",
        f"neg_file: {paths['negs']} (sample_neg_from_topk {found['sample_neg_from_topk']})",
        f"check: every one of the {found['pairs_checked']} pairs of {found['queries']}"
        " training queries has a score",
    ]
    if "verified_for" in found:  # check.json of earlier versions has not
        lines.append(f"verified for: {found['verified_for']}")
        lines.append(f"RetroMAE bi-encoder flags: {found['retromae_flags']}")
    text = "\n".join(lines) + "\n"
    Path(log).write_text(text)
    print(text)


DISTILL = config["distill"]
DISTILL_DIR = OUT / "distill"


def dense_before(split):
    """Dense ranking of the undistilled bi-encoder: the first stage's own when it is the
    same model at the same length (no second encoding of the corpus), else its own."""
    same = (
        FIRST["dense"]["model"] == DISTILL["model"]
        and FIRST["dense"]["max_len"] == DISTILL["max_len"]
    )
    if same:
        return str(OUT / "first_stage" / f"{split}.dense.tsv")
    return str(DISTILL_DIR / "base" / f"{split}.dense.tsv")


def distill_encoder(stage):
    return str(DISTILL_DIR / "model") if stage == "student" else DISTILL["model"]


def stage_encoder(stage):
    """The bi-encoder of a distillation stage (base = undistilled, student = distilled) in
    the shape of first_stage.dense: distill.max_len and precision, the first stage's
    encoding batch size."""
    return {
        "model": distill_encoder(stage),
        "max_len": DISTILL["max_len"],
        "batch_size": FIRST["dense"]["batch_size"],
        "precision": DISTILL["precision"],
    }


def student_model(wildcards):
    """The distilled model, an input of the student's encoding (the base model is a name)."""
    return [distill_encoder("student")] if wildcards.stage == "student" else []


def stage_encode_flags(wildcards):
    return encode_flags(stage_encoder(wildcards.stage))


def stage_search_flags(wildcards):
    return search_flags(stage_encoder(wildcards.stage))


def teacher_score_list(wildcards, input):
    """--teacher_score_files: the teacher's score files, comma-separated."""
    return ",".join(input.teacher)


def distill_run_files(wildcards):
    return list(distill_runs(wildcards.split).values())


def distill_run_flags(wildcards):
    return " ".join(
        f"--run {q(f'{name}={path}')}"
        for name, path in distill_runs(wildcards.split).items()
    )


def distill_table_targets():
    return [str(DISTILL_DIR / "eval" / f"{split}.table.txt") for split in SPLITS]


def distill_runs(split):
    """Rows of the distillation table: name -> ranking or score file."""
    runs = {}
    if FIRST["method"] != "dense" or user_ranking(split):
        runs[f"first stage ({'given' if user_ranking(split) else FIRST['method']})"] = (
            ranking_file(split)
        )
    runs["dense before distillation"] = dense_before(split)
    runs["dense after distillation"] = str(
        DISTILL_DIR / "student" / f"{split}.dense.tsv"
    )
    runs[f"reranked (top {RERANK['prediction_topk']})"] = str(
        OUT / "rerank" / f"{split}.scores.tsv"
    )
    return runs
