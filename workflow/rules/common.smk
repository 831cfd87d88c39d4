# What all rule files need (the checked config, paths, shell helpers, file functions).
# Helpers of one rule file live next to it in common_<rule file>.smk, included just before it
# (Snakefile).

import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# ---- The config: checked once (one line per mistake), defaults filled in from the schema


def check_config(config, schema_file, config_files):
    """One line per config mistake (cross_encoder.workflow.config_check); with the package not
    importable here (--sdm conda), Snakemake's own validation below reports them."""
    try:
        from cross_encoder.workflow.config_check import ConfigError
        from cross_encoder.workflow.config_check import check_config as check
    except ImportError:
        return
    try:
        check(config, schema_file, config_files)
    except ConfigError as e:
        raise WorkflowError(str(e)) from None


check_config(
    config,
    Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml",
    workflow.configfiles,
)
validate(config, schema="../schemas/config.schema.yaml")  # fills in the defaults


def guard_locks():
    """Snakemake's lock with an owner record: a run killed with SIGKILL leaves its lock
    behind, and the next run that locks removes it when its owner was on this host and is
    gone; a live or unverifiable owner's lock stays, and a refusal names it
    (cross_encoder.workflow.stale_locks). Only the head process locks: job subprocesses and
    cluster jobs run in other modes."""
    from snakemake_interface_executor_plugins.settings import ExecMode

    if workflow.exec_mode != ExecMode.DEFAULT:
        return
    try:
        from cross_encoder.workflow.stale_locks import install
    except ImportError:  # --sdm conda: the package lives in the rules' environment
        return
    install(workflow)


guard_locks()


def ignore_slurm_warning():
    """In a SLURM job, this Snakemake ignores SIGUSR1, the early warning the SLURM profile asks
    for before a training job's time limit: the trainer handles it (checkpoint, exit 75), the
    job step's Snakemake would die of it and take the trainer down before its save
    (cross_encoder.workflow.job_signals)."""
    from snakemake_interface_executor_plugins.settings import ExecMode

    try:
        from cross_encoder.workflow.job_signals import ignore_warning_in_job
    except ImportError:  # --sdm conda: the package lives in the rules' environment
        return
    ignore_warning_in_job(workflow.exec_mode != ExecMode.DEFAULT)


ignore_slurm_warning()

# ---- The run: where results go, and the config sections every rule file reads

RUN = config["run_name"]
OUT = Path(config["results_dir"]) / RUN
DATA = Path(config["results_dir"]) / "data"
TRAIN = config["train"]
FIRST = config["first_stage"]
RERANK = config["rerank"]


def provided_splits():
    """dev, and test when the data has test queries and qrels."""
    data = config["data"]
    test = data["source"] in ("synthetic", "beir") or bool(
        data.get("test_queries") and data.get("test_qrels")
    )
    return ["dev", "test"] if test else ["dev"]


def evaluated_splits():
    """evaluate.splits, or every split the data provides (null); one warning line when a
    provided test split is left out, or a test ranking has no queries and qrels to go with.
    """
    chosen, provided = config["evaluate"]["splits"], provided_splits()
    left = [s for s in provided if chosen is not None and s not in chosen]
    if left:
        print(
            f"warning: evaluate.splits {chosen} leaves out the {' and '.join(left)} split the"
            " data provides; set evaluate.splits to null (or add it) to evaluate it",
            file=sys.stderr,
        )
    elif "test" not in provided and (FIRST.get("rankings") or {}).get("test"):
        print(
            "warning: first_stage.rankings.test is set but data.test_queries/test_qrels are"
            " not: the test split is not evaluated",
            file=sys.stderr,
        )
    return list(chosen) if chosen is not None else provided


SPLITS = evaluated_splits()
FUSE = RERANK["fuse_with_first_stage"]
SELECT = TRAIN["selection"]
METRIC = config["evaluate"]["metrics"][
    0
]  # what selection and fusion maximise by default
# The split that tunes the fusion. Each split's queries are tokenized by a job of their own
# (preprocess_queries), as the rules that rerank them ask for them.
TUNE_SPLIT = "dev"
# The rules' conda env (--sdm conda): torch's CPU build, or with train.use_gpu its CUDA
# build and DeepSpeed (envs/cross_encoder_gpu.yaml).
ENV = "../../envs/" + (
    "cross_encoder_gpu.yaml" if TRAIN["use_gpu"] else "cross_encoder.yaml"
)


wildcard_constraints:
    split="train|dev|test|pseudo",
    scatteritem=r"\d+-of-\d+",


# Big rankings are scored by several jobs (rerank.smk, teacher.smk), gathered in order.
scattergather:
    rerank=RERANK["shards"],
    teacher=config["teacher"]["shards"],


# ---- Shell commands: quoting, the log, flags from a config section


def q(value) -> str:
    """Quote a config value for a shell command (a path with spaces works, `;` cannot run)."""
    return shlex.quote(str(value))


def slurm_logged(command, replaces_shell=False) -> str:
    """A rule's shell command with its output and errors in the rule's log, after a first
    line naming the SLURM job it ran in (SLURM_JOB_ID=none outside SLURM). The line is part
    of the command, not a shell.prefix, so that it lands in the log too.

    replaces_shell: the command starts its program with `exec` (after any VAR=value), so that
    the program becomes the job's process instead of a child of a shell. A signal then
    reaches it with no shell in between that dies first (SIGTERM at a SLURM time limit,
    SIGUSR1 before it): the trainer saves and Snakemake waits for it."""
    probe = "echo SLURM_JOB_ID=${{SLURM_JOB_ID:-none}}"
    if replaces_shell:
        return f"exec > {{log:q}} 2>&1; {probe}; {command}"
    return f"({probe}; {command}) > {{log:q}} 2>&1"


def flags(section, *keys, optional=(), **values) -> str:
    """Command-line flags from a config section: `--key value` for each of keys, then for
    each of optional that is set (not null, 0 or empty), then `--flag value` for each of
    values (a setting named otherwise in the config, or computed). Values are shell-quoted;
    True is a bare switch (`--trust_remote_code`), False and None leave the flag out."""
    items = [(key, section[key]) for key in keys]
    items += [(key, section[key]) for key in optional if section[key]]
    items += values.items()
    rendered = []
    for flag, value in items:
        if value is None or value is False:
            continue
        if value is True:
            rendered.append(f"--{flag}")
        else:
            rendered.append(f"--{flag} {q(value)}")
    return " ".join(rendered)


# ---- Files: the inputs, rankings and qrels of each split (several rule files read them)


def raw_file(kind):
    """Path of a raw input file: the user's (data.source=files) or the generated one."""
    source = config["data"]["source"]
    if source == "files":
        path = config["data"].get(kind)
        if not path:
            raise ValueError(
                f"config data.{kind} is required when data.source is 'files'"
            )
        return path
    if source == "beir" and kind == "corpus":
        return str(Path(beir_dir()) / "corpus.jsonl")  # read in place, never copied
    name = {
        "corpus": "corpus.tsv",
        "train_queries": "train.query.txt",
        "dev_queries": "dev.query.txt",
        "test_queries": "test.query.txt",
        "train_qrels": "qrels.train.tsv",
        "dev_qrels": "qrels.dev.tsv",
        "test_qrels": "qrels.test.tsv",
    }[kind]
    return str(DATA / source_tag() / name)


def beir_dir():
    """The BEIR dataset folder: config data_dir, or where the download rule puts it."""
    return (
        config.get("data_dir") or f"resources/beir/{config['data']['beir']['dataset']}"
    )


def output_folder(wildcards, output):
    """The folder of a rule's first output (the one of all its multiext() files)."""
    return os.path.dirname(output[0])


def source_tag():
    src = config["data"]["source"]
    if src == "beir":
        b = config["data"]["beir"]
        return f"beir-{b['dataset']}-dev{b['n_dev']}-seed{b['seed']}"
    if src == "synthetic":
        from cross_encoder.data.synthetic import GENERATOR_VERSION

        s = config["data"]["synthetic"]
        sizes = f"{s['n_train']}x{s['n_dev']}x{s['n_test']}"
        return f"synthetic-v{GENERATOR_VERSION}-seed{s['seed']}-{sizes}"
    return src


def query_file(split):
    if split == "pseudo":
        return str(OUT / "pseudo" / "pseudo.query.txt")
    return raw_file(f"{split}_queries")


PSEUDO_FILES = {
    "corpus": "corpus.tsv",
    "train_queries": "train.query.txt",
    "train_qrels": "qrels.train.tsv",
    "negs": "train.negs.tsv",
}


def qrels_file(split):
    return raw_file(f"{split}_qrels")


def user_ranking(split):
    """The user's own first-stage ranking for this split, if the config names one."""
    return (FIRST.get("rankings") or {}).get(split)


def ranking_file(split):
    """The first-stage ranking to rerank/evaluate for a split."""
    return user_ranking(split) or str(
        OUT / "first_stage" / f"{split}.{FIRST['method']}.tsv"
    )


def split_query_file(wildcards):
    return query_file(wildcards.split)


def split_qrels(wildcards):
    return qrels_file(wildcards.split)


def split_ranking(wildcards):
    return ranking_file(wildcards.split)


def encode_flags(encoder):
    """cross_encoder.first_stage.dense encode settings of a bi-encoder: first_stage.dense, or a
    distillation stage's (stage_encoder())."""
    return flags(encoder, "model", "max_len", "batch_size", "precision")


def search_flags(encoder):
    """cross_encoder.first_stage.dense search settings of a bi-encoder (as encode_flags)."""
    return flags(encoder, "model", "max_len", "precision")


def neg_file():
    return FIRST.get("neg_file") or str(OUT / "first_stage" / "train.negs.tsv")


# ---- Processes and threads of the torch jobs

# CPU cores a job gets per GPU (data loading, collating, the host side of each rank). On a
# site with fewer cores per GPU lower it here, or set one rule's threads in the profile
# (set-threads): the ranks split whatever a job gets (rank_threads).
CPUS_PER_GPU = 8


def job_threads(nproc):
    """Threads of a job that starts nproc processes (torchrun ranks): CPUS_PER_GPU per rank
    when it runs on GPUs (train.use_gpu), else 2 per rank. On SLURM the job asks for them as
    --cpus-per-task next to --gpus=nproc; locally Snakemake caps them at --cores."""
    return nproc * (CPUS_PER_GPU if TRAIN["use_gpu"] else 2)


def rank_threads(nproc):
    """Shell assignment of OMP_NUM_THREADS for each of nproc ranks: the job's threads shared
    among them (at least 1), so nproc ranks never run nproc x threads OpenMP threads."""
    return f"OMP_NUM_THREADS=$(( {{threads}} > {nproc} ? {{threads}} / {nproc} : 1 ))"


def torch_launcher(nproc):
    """`torchrun` for several processes, plain python for one."""
    if nproc > 1:
        return f"torchrun --standalone --nproc_per_node {nproc}"
    return "python"


# ---- Settings of the cross-encoder shared by train, quantize, rerank and teacher


def report_to():
    return [t.strip() for t in TRAIN["report_to"].split(",") if t.strip()] or ["none"]


def prediction_max_len():
    return RERANK["max_len"] or TRAIN["max_len"]


def predict_flags(prediction_topk, max_len):
    """cross_encoder.run --do_predict settings (rerank.*) for scoring the top prediction_topk
    of each query's ranking (None: every pair of the file) at max_len tokens a pair."""
    return flags(
        RERANK,
        "precision",
        "backend",
        prediction_topk=prediction_topk,
        max_len=max_len,
        prediction_batch_tokens=RERANK["batch_tokens"],
        prediction_batch_pairs=RERANK["batch_pairs"] or None,
        prediction_chunk_pairs=RERANK["chunk_pairs"],
        trust_remote_code=TRAIN["trust_remote_code"],
        require_gpu=TRAIN["use_gpu"],
    )


# ---- Evaluation outputs: the Snakefile's targets, report.smk and hub_model.smk


def split_flags(flag, paths):
    """``--flag=split=path`` for each evaluated split, as cross_encoder.evaluation.report/model_card
    take them."""
    return " ".join(q(f"--{flag}={s}={p}") for s, p in zip(SPLITS, paths))


def metrics_flags(wildcards, input):
    return split_flags("metrics", input.metrics)


def eval_targets():
    return [str(OUT / "eval" / f"{split}.table.txt") for split in SPLITS]


def print_tables(paths, log):
    """Print every evaluation table at the end of the run (and keep a copy in the log)."""
    text = "".join(f"\n== {path}\n{Path(path).read_text()}" for path in paths)
    Path(log).write_text(text)
    print(text)
