"""The tokenizer guard: preprocess records which tokenizer made the token ids, and
``cross_encoder.run`` refuses (one line, exit 2, nothing written) to score them with a model
whose tokenizer would have made other ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import build_tokenizer

from cross_encoder import run
from cross_encoder.modeling import load_tokenizer, tokenizer_identity


def model_with_tokenizer(src: Path, dst: Path, shuffle_seed: int | None) -> Path:
    """``src``'s weights with a freshly built tokenizer (its words reordered by the seed)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(src / name, dst / name)
    build_tokenizer(dst, shuffle_seed=shuffle_seed)
    return dst


@pytest.fixture(scope="module")
def reordered_model(tiny_model_dir, tmp_path_factory) -> Path:
    """Same architecture, vocabulary size and special tokens; other ids for the words."""
    return model_with_tokenizer(tiny_model_dir, tmp_path_factory.mktemp("reordered"), 1)


def predict_argv(model_dir, tiny_data, tok: Path, out: Path, *flags) -> list[str]:
    return [
        "--output_dir", str(out / "work"), "--model_name_or_path", str(model_dir),
        "--do_predict", "--corpus_file", str(tok / "corpus"),
        "--test_query_file", str(tok / "dev_query"), "--test_file", str(tiny_data["test_file"]),
        "--prediction_save_path", str(out / "scores.tsv"), "--max_len", "48",
        "--precision", "fp32", "--use_cpu", "--report_to", "none", *flags,
    ]  # fmt: skip


def one_error_line(stderr: str) -> str:
    """The error as the user sees it: one line, the last, no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    errors = [x for x in lines if x.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


def test_identity_ignores_the_path_and_sees_a_reordered_vocabulary(
    tiny_model_dir, reordered_model, tmp_path
):
    same = shutil.copytree(tiny_model_dir, tmp_path / "elsewhere")
    a = tokenizer_identity.build(load_tokenizer(str(tiny_model_dir)), "a", 32, True)
    b = tokenizer_identity.build(load_tokenizer(str(same)), "b", 64, False)
    c = tokenizer_identity.build(load_tokenizer(str(reordered_model)))
    assert a["name_or_path"] != b["name_or_path"]
    assert tokenizer_identity.differences(a, b) == []  # name, length, title: not token ids
    assert tokenizer_identity.differences(a, c) == ["vocab_sha256"]
    assert a["special_token_ids"] == c["special_token_ids"] == {
        "cls": 2, "sep": 3, "pad": 0, "unk": 1, "mask": 4
    }  # fmt: skip
    assert a["normalizer"]["type"] == "BertNormalizer"
    assert a["pre_tokenizer"] == {"type": "BertPreTokenizer"}


def test_another_normaliser_is_a_mismatch(tiny_model_dir, tmp_path):
    from tokenizers import normalizers

    tok = load_tokenizer(str(tiny_model_dir))
    a = tokenizer_identity.build(tok)
    tok.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    assert tokenizer_identity.differences(a, tokenizer_identity.build(tok)) == ["normalizer"]


def test_preprocess_records_the_tokenizer_in_every_folder(tiny_preprocessed, tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    for name in ("corpus", "train_query", "dev_query"):
        rec = json.loads((tiny_preprocessed / name / tokenizer_identity.IDENTITY_FILE).read_text())
        assert rec["name_or_path"] == str(tiny_model_dir)
        assert rec["vocab_sha256"] == tokenizer_identity.vocab_sha256(tok)
        assert (rec["max_seq_length"], rec["use_title"]) == (32, True)
    assert not (tiny_preprocessed / tokenizer_identity.IDENTITY_FILE).exists()


def test_predict_with_a_reordered_vocabulary_stops_with_one_line(
    reordered_model, tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, capsys
):
    rc = run.main(predict_argv(reordered_model, tiny_data, tiny_preprocessed, tmp_path))
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {tiny_preprocessed / 'corpus'} was tokenized with ")
    assert str(tiny_model_dir) in line and str(reordered_model) in line
    assert line.count("vocab sha256") == 2 and "(vocabulary differs);" in line
    assert f"--tokenizer_name {reordered_model}" in line
    assert line.endswith("or pass --allow_tokenizer_mismatch if you mean it")
    assert not (tmp_path / "scores.tsv").exists()
    assert not (tmp_path / "work").exists()


def test_allow_tokenizer_mismatch_proceeds_with_a_warning(
    reordered_model, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    argv = predict_argv(
        reordered_model, tiny_data, tiny_preprocessed, tmp_path, "--allow_tokenizer_mismatch"
    )
    assert run.main(argv) == 0
    assert (tmp_path / "scores.tsv").stat().st_size > 0
    assert "--allow_tokenizer_mismatch given" in caplog.text


def test_the_same_tokenizer_at_another_path_proceeds(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    moved = shutil.copytree(tiny_model_dir, tmp_path / "moved_model")
    assert run.main(predict_argv(moved, tiny_data, tiny_preprocessed, tmp_path)) == 0
    assert (tmp_path / "scores.tsv").stat().st_size > 0
    assert not [r for r in caplog.records if r.name == tokenizer_identity.__name__]


def test_folders_without_a_record_warn_once_and_proceed(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, caplog
):
    old = shutil.copytree(tiny_preprocessed, tmp_path / "old")
    for f in old.glob(f"*/{tokenizer_identity.IDENTITY_FILE}"):
        f.unlink()
    assert run.main(predict_argv(tiny_model_dir, tiny_data, old, tmp_path)) == 0
    warnings = [r for r in caplog.records if tokenizer_identity.IDENTITY_FILE in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert str(old / "corpus") in warnings[0].getMessage()
    assert str(old / "dev_query") in warnings[0].getMessage()


def test_a_model_trained_with_titles_refuses_a_corpus_without(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, capsys
):
    model = shutil.copytree(tiny_model_dir, tmp_path / "trained")
    tok = load_tokenizer(str(model))
    tokenizer_identity.write(model, tokenizer_identity.build(tok, str(model), 32, use_title=False))
    rc = run.main(predict_argv(model, tiny_data, tiny_preprocessed, tmp_path))
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert "use_title=True" in line and "use_title=False" in line
    assert "re-run preprocess without --use_title" in line
    assert not (tmp_path / "scores.tsv").exists()


def test_folder_without_a_record_still_checks_the_vocabulary_range(
    tiny_model_dir, tiny_data, tiny_preprocessed, tmp_path, capsys, caplog
):
    """A RetroMAE-written folder has no record; token ids beyond the model's vocabulary
    (tokenized with a larger one) are still a mismatch: one line, exit 2."""
    import datasets

    from cross_encoder.io.collection import TokenizedCollection

    size = len(load_tokenizer(str(tiny_model_dir)))
    old = shutil.copytree(tiny_preprocessed, tmp_path / "old")
    corpus = TokenizedCollection.load(old / "corpus")
    rows = [corpus.tokens(i) for i in corpus.ids]
    rows[-1] = [*rows[-1][:-1], size + 7]
    shutil.rmtree(old / "corpus")
    datasets.Dataset.from_dict({"id": corpus.ids, "input_ids": rows}).save_to_disk(
        str(old / "corpus")
    )
    (old / "corpus" / "mapping_id.txt").write_text(
        "".join(f"{i}\t{r}\n" for r, i in enumerate(corpus.ids))
    )
    assert tokenizer_identity.max_token_id(old / "corpus") == size + 7
    assert run.main(predict_argv(tiny_model_dir, tiny_data, old, tmp_path)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"holds token id {size + 7}, outside the {size} ids" in line
    assert tokenizer_identity.FLAG in line and not (tmp_path / "scores.tsv").exists()
