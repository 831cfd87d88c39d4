"""Distillation of the cross-encoder into the bi-encoder: the loss by hand, a tiny run."""

import json
import math

import pytest
import torch

from cross_encoder.distillation import distill
from cross_encoder.first_stage.dense import BiEncoder
from cross_encoder.io import positives, read_qrels

LOG1PE = math.log(1 + math.e)


def test_loss_by_hand_own_group():
    # cosines [1, 0]; uniform teacher; T = 1
    q = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 0.0]])
    log_s = [1 - LOG1PE, -LOG1PE]
    kl = sum(0.5 * (math.log(0.5) - ls) for ls in log_s)
    ce = LOG1PE - 1
    loss, parts = distill.distillation_loss(
        q, p, t, temperature=1.0, contrastive_weight=0.5, in_batch_negatives=False
    )
    assert parts["kl"] == pytest.approx(kl, abs=1e-6)
    assert parts["ce"] == pytest.approx(ce, abs=1e-6)
    assert float(loss) == pytest.approx(kl + 0.5 * ce, abs=1e-6)
    loss, _ = distill.distillation_loss(
        q, p, t, temperature=1.0, kl_weight=0.0, contrastive_weight=1.0, in_batch_negatives=False
    )
    assert float(loss) == pytest.approx(ce, abs=1e-6)


def test_loss_by_hand_temperatures_and_in_batch_negatives():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    # student logits /0.5 = [2, 0] per group; teacher [4, 0] / 2 = [2, 0]: KL = 0
    t = torch.tensor([[4.0, 0.0], [4.0, 0.0]])
    loss, parts = distill.distillation_loss(
        q, p, t, temperature=0.5, teacher_temperature=2.0, contrastive_weight=1.0
    )
    assert parts["kl"] == pytest.approx(0.0, abs=1e-6)
    # in-batch: each query sees [2, 0, 0, 2] with its positive at 0 resp. 2 (B x B*G)
    ce = math.log(2 * math.e**2 + 2) - 2
    assert parts["ce"] == pytest.approx(ce, abs=1e-6)
    assert float(loss) == pytest.approx(ce, abs=1e-6)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
def test_kl_is_retromae_mean_times_group_size():
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(12, 8), dim=-1)
    t = torch.randn(3, 4) * 3
    _, parts = distill.distillation_loss(q, p, t, temperature=0.1)
    student = torch.einsum("bd,bgd->bg", q, p.view(3, 4, 8)) / 0.1
    retromae = torch.nn.KLDivLoss(reduction="mean")(
        torch.log_softmax(student, -1), torch.softmax(t, -1)
    )
    assert parts["kl"] == pytest.approx(4 * float(retromae), rel=1e-5)


def test_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        distill.distillation_loss(torch.zeros(2, 4), torch.zeros(5, 4), torch.zeros(2, 2))
    with pytest.raises(ValueError):
        distill.distillation_loss(torch.zeros(2, 4), torch.zeros(6, 4), torch.zeros(2, 2))


def tiny_teacher(tmp_path, story_data):
    """A hand-made teacher for the tiny data: the positive 4, the swapped-roles passage 1,
    the 'nobody saw' passage -1, two passages of other stories -3."""
    pos = positives(read_qrels(story_data["train_qrels"]))
    neg_lines, score_lines = [], []
    for q, (p,) in pos.items():
        p = int(p)
        others = [(p + 3) % 72, (p + 6) % 72]
        negs = [(p + 1, 1.0), (p + 2, -1.0), *((o, -3.0) for o in others)]
        neg_lines.append(f"{q}\t" + ",".join(str(n) for n, _ in negs))
        score_lines += [f"{q}\t{p}\t4.0"] + [f"{q}\t{n}\t{s}" for n, s in negs]
    (tmp_path / "negs.tsv").write_text("\n".join(neg_lines) + "\n")
    (tmp_path / "scores.txt").write_text("\n".join(score_lines) + "\n")
    return tmp_path / "negs.tsv", tmp_path / "scores.txt"


def mean_loss(model_dir, data, batch_size=16):
    enc = BiEncoder(str(model_dir), max_len=32, device="cpu")
    enc.model.eval()
    total = n = 0
    with torch.no_grad():
        for qs, ps, t in data.batches(0, batch_size):
            loss, _ = distill.distillation_loss(enc.forward(qs), enc.forward(ps), t)
            total, n = total + float(loss) * len(qs), n + len(qs)
    return total / n


@pytest.mark.slow
def test_tiny_distillation_lowers_the_loss_and_saves_a_sentence_transformer(
    tmp_path, story_data, tiny_model_dir
):
    negs, scores = tiny_teacher(tmp_path, story_data)
    out = tmp_path / "distilled"
    argv = ["--model", str(tiny_model_dir), "--output_dir", str(out)]
    argv += ["--corpus_file", str(story_data["corpus"]), "--train_query_file"]
    argv += [str(story_data["train_queries"]), "--train_qrels", str(story_data["train_qrels"])]
    argv += ["--neg_file", str(negs), "--teacher_score_files", str(scores)]
    argv += ["--epochs", "8", "--batch_size", "4", "--group_size", "4", "--max_len", "32"]
    argv += ["--learning_rate", "1e-3", "--seed", "1", "--logging_steps", "8"]
    assert distill.main(argv) == 0
    for name in ("model.safetensors", "config.json", "modules.json", "1_Pooling/config.json"):
        assert (out / name).exists(), name
    assert (out / "tokenizer.json").exists() or (out / "vocab.txt").exists()
    assert not list(tmp_path.glob(".distilled*"))  # the temp folder was renamed away
    log = json.loads((out / "distill_log.json").read_text())
    assert log["steps"] == 8 * 4 and log["queries"] == 16

    from cross_encoder.distillation.teacher import read_teacher_scores
    from cross_encoder.first_stage.dense import passage_texts
    from cross_encoder.io import read_neg_file, read_queries

    pids, texts = passage_texts(story_data["corpus"])
    data = distill.DistillData(
        read_queries(story_data["train_queries"]),
        dict(zip(pids, texts, strict=True)),
        positives(read_qrels(story_data["train_qrels"])),
        read_neg_file(negs),
        read_teacher_scores(str(scores)),
        group_size=4,
        sample_neg_from_topk=200,
        seed=0,
    )
    before, after = mean_loss(tiny_model_dir, data), mean_loss(out, data)
    print(f"tiny distillation: mean loss {before:.4f} -> {after:.4f}")
    assert after < 0.8 * before, (before, after)

    # sentence-transformers reads the folder and embeds as our BiEncoder does
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(out), device="cpu")
    ours = BiEncoder(str(out), max_len=32, device="cpu").encode(texts[:5])
    theirs = st.encode(texts[:5], convert_to_numpy=True)
    assert abs(ours - theirs).max() < 1e-4


def test_distill_refuses_unscored_negatives(tmp_path, story_data, tiny_model_dir, capsys):
    negs, scores = tiny_teacher(tmp_path, story_data)
    lines = scores.read_text().splitlines()
    scores.write_text("\n".join(lines[:-1]) + "\n")  # drop the last query's last negative
    argv = ["--model", str(tiny_model_dir), "--output_dir", str(tmp_path / "out")]
    argv += ["--corpus_file", str(story_data["corpus"]), "--train_query_file"]
    argv += [str(story_data["train_queries"]), "--train_qrels", str(story_data["train_qrels"])]
    argv += ["--neg_file", str(negs), "--teacher_score_files", str(scores)]
    assert distill.main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {negs}:" in err and "first of 1 pairs without one" in err
    assert not (tmp_path / "out").exists()


def test_bf16_distillation_autocasts_and_saves_fp32_weights(
    tmp_path, story_data, tiny_model_dir, monkeypatch
):
    """--precision bf16 (what auto picks on an AMX CPU): the encoder runs under autocast,
    the optimizer is fused AdamW over float32 weights, and float32 weights are saved."""
    from safetensors.torch import load_file

    from cross_encoder.first_stage import dense

    seen = []
    real = dense.BiEncoder.forward

    def spy(self, texts):
        seen.append((torch.is_autocast_enabled("cpu"), next(self.model.parameters()).dtype))
        return real(self, texts)

    monkeypatch.setattr(dense.BiEncoder, "forward", spy)
    fused = []
    real_adamw = torch.optim.AdamW

    def adamw(*args, **kwargs):
        fused.append(kwargs.get("fused"))
        return real_adamw(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", adamw)
    negs, scores = tiny_teacher(tmp_path, story_data)
    out = tmp_path / "distilled"
    argv = ["--model", str(tiny_model_dir), "--output_dir", str(out)]
    argv += ["--corpus_file", str(story_data["corpus"]), "--train_query_file"]
    argv += [str(story_data["train_queries"]), "--train_qrels", str(story_data["train_qrels"])]
    argv += ["--neg_file", str(negs), "--teacher_score_files", str(scores), "--max_steps", "2"]
    argv += ["--batch_size", "4", "--group_size", "4", "--max_len", "32", "--precision"]
    assert distill.main([*argv, "bf16"]) == 0
    assert seen and set(seen) == {(True, torch.float32)} and fused == [True]
    log = json.loads((out / "distill_log.json").read_text())
    assert log["precision"] == "bf16" and all(math.isfinite(h["loss"]) for h in log["history"])
    weights = load_file(out / "model.safetensors")
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}
    seen.clear()
    assert distill.main([*argv, "fp32"]) == 0
    assert set(seen) == {(False, torch.float32)}


def test_auto_on_a_gpu_keeps_fp32(monkeypatch):
    assert distill.train_precision("auto", "cuda") == "fp32"
    assert distill.train_precision("fp32", "cpu") == "fp32"
    assert distill.train_precision("bf16", "cpu") == "bf16"
