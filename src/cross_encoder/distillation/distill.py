"""Distil the cross-encoder into a bi-encoder: RetroMAE's bi-encoder training with
``--teacher_score_files``.

    python -m cross_encoder.distillation.distill --model all-MiniLM-L6-v2 --output_dir distilled \\
        --corpus_file corpus.tsv --train_query_file train.query.txt \\
        --train_qrels train_qrels.txt --neg_file train.negs.tsv \\
        --teacher_score_files train_qrels_score.txt,train_rerank_score.txt

Each step takes ``batch_size`` training queries; each gets a group of its positive and
``group_size - 1`` negatives drawn afresh from the first ``sample_neg_from_topk`` entries of
its neg_file. The bi-encoder (:class:`cross_encoder.first_stage.dense.BiEncoder`: mean pooling,
normalised) scores the group, and :func:`distillation_loss` pulls the softmax of those
scores towards the softmax of the teacher's, plus a small contrastive term. Every pair that
can be drawn must have a teacher score (checked first, as ``cross_encoder.distillation.teacher
check``).

``--precision auto`` trains under ``torch.autocast`` in bf16 on a CPU where bf16 is fast
(AMX, see :mod:`cross_encoder.hardware`), with float32 master weights (what is saved) and
the loss in float32; fp32 elsewhere (GPUs included, as before). The optimizer is torch's
fused AdamW.

The result is a sentence-transformers model folder (``model.safetensors``, config,
tokenizer, ``modules.json``, pooling and normalisation), written atomically: usable by
``cross_encoder.first_stage.dense`` and by ``SentenceTransformer(path)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cross_encoder.distillation.teacher import check_files, read_teacher_scores
from cross_encoder.io import (
    InputError,
    atomic_dir,
    cli,
    iter_corpus,
    positives,
    read_neg_file,
    read_qrels,
    read_queries,
    setup_logging,
    write_json,
)

logger = logging.getLogger(__name__)


def distillation_loss(
    q_reps: torch.Tensor,
    p_reps: torch.Tensor,
    teacher_scores: torch.Tensor,
    temperature: float = 0.05,
    teacher_temperature: float = 1.0,
    kl_weight: float = 1.0,
    contrastive_weight: float = 0.1,
    in_batch_negatives: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """KL divergence to the teacher's softmax plus a contrastive cross-entropy.

    Reference: RetroMAE's ``bi_encoder.modeling.BiEncoderModel.forward`` (staoxiao/RetroMAE,
    Xiao et al., EMNLP 2022), the knowledge distillation of RocketQAv2 / Hofstätter et al.
    (2021): with ``B`` queries and groups of ``G`` passages (positive first),

    * ``s[b, g] = q_b · p_{b,g} / temperature`` (student, ``q_reps`` ``(B, D)``,
      ``p_reps`` ``(B*G, D)`` group by group),
    * ``kl = KL(softmax(teacher / teacher_temperature) || softmax(s))``, summed over the
      group and averaged over queries ("batchmean": the true KL divergence; RetroMAE's
      ``KLDivLoss(reduction="mean")`` also divides by ``G``, i.e. ``kl_weight = 1/G`` here),
    * ``ce`` = cross-entropy with the positive as target, over the query's own group or,
      with ``in_batch_negatives``, over all ``B*G`` passages of the batch (RetroMAE's
      default: the other queries' passages are extra negatives; RetroMAE divides by the
      temperature only when it is below 1, we always do),

    and the loss is ``kl_weight * kl + contrastive_weight * ce``. Returns the loss and its
    parts as floats (for logging).
    """
    b, d = q_reps.shape
    if p_reps.shape[0] % b or p_reps.shape[1] != d:
        raise ValueError(f"p_reps {tuple(p_reps.shape)} is not B*G x D for B={b}, D={d}")
    g = p_reps.shape[0] // b
    if teacher_scores.shape != (b, g):
        raise ValueError(f"teacher_scores {tuple(teacher_scores.shape)} is not ({b}, {g})")
    q = q_reps.float()
    p = p_reps.float()
    group = torch.einsum("bd,bgd->bg", q, p.view(b, g, d)) / temperature
    target = F.softmax(teacher_scores.float() / teacher_temperature, dim=-1)
    kl = F.kl_div(F.log_softmax(group, dim=-1), target, reduction="batchmean")
    if in_batch_negatives:
        logits = q @ p.T / temperature
        labels = torch.arange(b, device=q.device) * g
    else:
        logits = group
        labels = torch.zeros(b, dtype=torch.long, device=q.device)
    ce = F.cross_entropy(logits, labels)
    loss = kl_weight * kl + contrastive_weight * ce
    return loss, {"loss": loss.item(), "kl": kl.item(), "ce": ce.item()}


class DistillData:
    """Training queries with their positives, negatives (``neg_file`` top-k) and teacher
    scores; :meth:`batches` draws one epoch of groups, seeded by ``(seed, epoch)``."""

    def __init__(
        self,
        queries: dict[str, str],
        passages: dict[str, str],
        pos: dict[str, list[str]],
        negs: dict[str, list[str]],
        scores: dict[str, dict[str, float]],
        group_size: int,
        sample_neg_from_topk: int,
        seed: int,
    ):
        self.queries, self.passages, self.scores = queries, passages, scores
        self.group_size, self.seed = group_size, seed
        self.pos: dict[str, list[str]] = {}
        self.negs: dict[str, list[str]] = {}
        skipped = 0
        for q, ps in pos.items():
            ps = [p for p in ps if p in passages]
            exclude = set(ps)
            ns = [p for p in negs.get(q, [])[:sample_neg_from_topk] if p not in exclude]
            ns = [p for p in ns if p in passages]
            if q not in queries or not ps or len(ns) < group_size - 1:
                skipped += 1
                continue
            self.pos[q], self.negs[q] = ps, ns
        if skipped:
            logger.warning(
                "%d of %d training queries skipped: unknown query, positive not in the corpus, "
                "or fewer than %d scored negatives",
                skipped,
                len(pos),
                group_size - 1,
            )
        self.qids = list(self.pos)
        if not self.qids:
            raise InputError(None, "no training query has a positive and enough negatives")

    def __len__(self) -> int:
        return len(self.qids)

    def batches(self, epoch: int, batch_size: int):
        """Yield ``(query_texts, passage_texts, teacher_scores)`` for each batch of an epoch
        (a partial last batch included)."""
        rng = random.Random(f"{self.seed}-{epoch}")
        order = list(self.qids)
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            qs, ps, ts = [], [], []
            for q in order[start : start + batch_size]:
                group = [rng.choice(self.pos[q]), *rng.sample(self.negs[q], self.group_size - 1)]
                qs.append(self.queries[q])
                ps.extend(self.passages[p] for p in group)
                ts.append([self.scores[q][p] for p in group])
            yield qs, ps, torch.tensor(ts, dtype=torch.float32)


def save_sentence_transformer(encoder, output_dir: str | Path, max_len: int) -> None:
    """Save as a sentence-transformers folder (Transformer -> mean/CLS Pooling ->
    Normalize), with safetensors weights and the tokenizer, atomically (a sibling temp
    folder renamed into place: :func:`cross_encoder.io.atomic_dir`)."""
    with atomic_dir(output_dir) as tmp:
        _write_sentence_transformer(encoder, tmp, max_len)


def _write_sentence_transformer(encoder, tmp: Path, max_len: int) -> None:
    encoder.model.save_pretrained(tmp, safe_serialization=True)
    encoder.tokenizer.save_pretrained(tmp)
    dim = encoder.model.config.hidden_size
    (tmp / "1_Pooling").mkdir()
    (tmp / "2_Normalize").mkdir()
    write_json(
        tmp / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": encoder.pooling == "cls",
            "pooling_mode_mean_tokens": encoder.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    write_json(tmp / "sentence_bert_config.json", {"max_seq_length": max_len})
    modules = [
        ("0", "", "sentence_transformers.models.Transformer"),
        ("1", "1_Pooling", "sentence_transformers.models.Pooling"),
        ("2", "2_Normalize", "sentence_transformers.models.Normalize"),
    ]
    write_json(
        tmp / "modules.json",
        [{"idx": i, "name": n, "path": p, "type": t} for i, (n, p, t) in enumerate(modules)],
    )


def train(args) -> dict:
    """Train the bi-encoder on the teacher's scores; returns the training summary."""
    from transformers import get_linear_schedule_with_warmup

    from cross_encoder.first_stage.dense import BiEncoder

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    check_files(
        args.teacher_score_files, args.train_qrels, args.neg_file, args.sample_neg_from_topk
    )
    scores = read_teacher_scores(args.teacher_score_files)
    passages = {
        pid: f"{title} {text}".strip() for pid, title, text in iter_corpus(args.corpus_file)
    }
    data = DistillData(
        read_queries(args.train_query_file),
        passages,
        positives(read_qrels(args.train_qrels)),
        read_neg_file(args.neg_file),
        scores,
        args.group_size,
        args.sample_neg_from_topk,
        args.seed,
    )
    encoder = BiEncoder(args.model, args.max_len, args.pooling)
    precision = train_precision(args.precision, encoder.device)
    device_type = torch.device(encoder.device).type
    autocast = {"device_type": device_type, "dtype": torch.bfloat16}
    autocast["enabled"] = precision == "bf16"
    steps_per_epoch = math.ceil(len(data) / args.batch_size)
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    optim = torch.optim.AdamW(
        encoder.model.parameters(),
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
        fused=device_type in ("cpu", "cuda"),  # one kernel for all parameters
    )
    sched = get_linear_schedule_with_warmup(optim, int(args.warmup_ratio * total), total)
    logger.info(
        "distilling %s on %d queries: %d steps (batch %d x group %d), %s, %s",
        args.model,
        len(data),
        total,
        args.batch_size,
        args.group_size,
        encoder.device,
        "bf16 autocast, fp32 master weights" if precision == "bf16" else "fp32",
    )
    encoder.model.train()
    history: list[dict] = []
    step, start = 0, time.perf_counter()
    for epoch in range(args.epochs):
        for qs, ps, teacher in data.batches(epoch, args.batch_size):
            if step >= total:
                break
            with torch.autocast(**autocast):
                q_reps, p_reps = encoder.forward(qs), encoder.forward(ps)
            loss, parts = distillation_loss(  # casts to float32 itself
                q_reps,
                p_reps,
                teacher.to(encoder.device),
                temperature=args.temperature,
                teacher_temperature=args.teacher_temperature,
                kl_weight=args.kl_weight,
                contrastive_weight=args.contrastive_weight,
                in_batch_negatives=args.in_batch_negatives,
            )
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss at step {step}: {parts}")
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder.model.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            history.append({"step": step, "epoch": epoch, **parts})
            if step % args.logging_steps == 0 or step == total:
                logger.info(
                    "step %d/%d  loss %.4f  kl %.4f  ce %.4f  (%.1f s)",
                    step,
                    total,
                    parts["loss"],
                    parts["kl"],
                    parts["ce"],
                    time.perf_counter() - start,
                )
    encoder.model.eval()
    save_sentence_transformer(encoder, args.output_dir, args.max_len)
    summary = {
        "args": vars(args),
        "queries": len(data),
        "steps": step,
        "precision": precision,
        "seconds": round(time.perf_counter() - start, 2),
        "history": history,
    }
    write_json(Path(args.output_dir) / "distill_log.json", summary)
    logger.info("distilled model in %s (%d steps)", args.output_dir, step)
    return summary


def train_precision(precision: str, device: str) -> str:
    """``fp32`` or ``bf16`` for training at ``--precision``: ``auto`` is the machine's choice
    on a CPU (:func:`cross_encoder.hardware.resolve`) and fp32 on a GPU (as before)."""
    from cross_encoder import hardware

    if precision == "auto" and torch.device(device).type == "cuda":
        return "fp32"
    return hardware.resolve(precision, device)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.distillation.distill", description=__doc__
    )
    a = p.add_argument
    a("--model", default="all-MiniLM-L6-v2", help="bi-encoder to fine-tune (name or folder)")
    a("--output_dir", required=True, help="the distilled sentence-transformers folder")
    a("--corpus_file", required=True, help="pid<TAB>[title<TAB>]text or corpus.jsonl")
    a("--train_query_file", required=True, help="qid<TAB>text or queries.jsonl")
    a("--train_qrels", required=True, help="train qrels (qid pid, 4 columns or BEIR)")
    a("--neg_file", required=True, help="qid<TAB>pid,pid,... from the scored train ranking")
    a("--teacher_score_files", required=True, help="comma-separated qid pid score files")
    a("--sample_neg_from_topk", type=int, default=200, help="negatives from this top-k")
    a("--epochs", type=int, default=1)
    a("--max_steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    a("--learning_rate", type=float, default=2e-5)
    a("--weight_decay", type=float, default=0.01)
    a("--warmup_ratio", type=float, default=0.1)
    a("--batch_size", type=int, default=16, help="queries per step")
    a("--group_size", type=int, default=8, help="1 positive + group_size-1 negatives")
    a("--temperature", type=float, default=0.05, help="student: cosine / temperature")
    a("--teacher_temperature", type=float, default=1.0, help="teacher: score / temperature")
    a("--kl_weight", type=float, default=1.0)
    a("--contrastive_weight", type=float, default=0.1)
    a(
        "--in_batch_negatives",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="contrastive term over every passage of the batch (else the own group only)",
    )
    a(
        "--max_len",
        "--max_length",
        dest="max_len",
        type=int,
        default=256,
        help="tokens per query or passage",
    )
    a("--pooling", choices=["mean", "cls"], default="mean")
    a("--seed", type=int, default=42)
    a("--logging_steps", type=int, default=10)
    a(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="auto: bf16 autocast on a CPU where bf16 is fast (AMX), else fp32",
    )
    a(
        "--require_gpu",
        action="store_true",
        help="stop at once (exit 2) without a CUDA GPU instead of training on the CPU",
    )
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.require_gpu:
        from cross_encoder import hardware

        if problem := hardware.gpu_problem(1):
            raise InputError(None, f"--require_gpu: {problem}")
    for name in ("epochs", "batch_size", "max_len", "sample_neg_from_topk", "logging_steps"):
        if getattr(args, name) < 1:
            raise InputError(None, f"--{name} must be >= 1")
    if args.group_size < 2:
        raise InputError(None, "--group_size must be >= 2 (a positive and a negative)")
    for name in ("temperature", "teacher_temperature", "learning_rate"):
        if not getattr(args, name) > 0:
            raise InputError(None, f"--{name} must be > 0")
    if args.kl_weight < 0 or args.contrastive_weight < 0:
        raise InputError(None, "--kl_weight and --contrastive_weight must be >= 0")
    summary = train(args)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "args")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
