"""``cross_encoder.modeling``: names of packaged models, loading in float32, the atomic
export of a trained model."""

from __future__ import annotations

import os

import pytest
import torch

from cross_encoder import io, modeling


def test_packaged_names_resolve_to_the_shipped_folder_and_others_pass_through(tmp_path):
    path = modeling.resolve_model("all-MiniLM-L6-v2")
    assert os.path.isfile(os.path.join(path, "config.json"))
    assert modeling.resolve_model(str(tmp_path)) == str(tmp_path)


def test_a_bf16_checkpoint_loads_as_fp32(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from cross_encoder.training.arguments import ModelArguments

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    model.to(torch.bfloat16).save_pretrained(tmp_path)  # what DeepSpeed bf16 saves
    loaded = modeling.load_model(ModelArguments(model_name_or_path=str(tmp_path)))
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}


def test_a_missing_model_is_one_input_error(tmp_path):
    from cross_encoder.training.arguments import ModelArguments

    with pytest.raises(io.InputError, match="cannot load model"):
        modeling.load_model(ModelArguments(model_name_or_path=str(tmp_path / "none")))


def test_export_copies_the_model_without_checkpoints_and_replaces_an_old_export(tmp_path):
    out, final = tmp_path / "state", tmp_path / "model"
    (out / "checkpoint-2").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "training_args.bin"):
        (out / name).write_text(name)
    final.mkdir()
    (final / "stale.txt").write_text("old")
    modeling.export_model(str(out), str(final))
    assert sorted(p.name for p in final.iterdir()) == ["config.json", "model.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_a_model_without_safetensors_says_how_to_convert(tiny_model_dir, tmp_path):
    """microsoft/deberta-v3-base may have only pytorch_model.bin on its main branch: the
    error names the fix (a one-time conversion), in one line."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from cross_encoder.io import InputError
    from cross_encoder.modeling import load_model
    from cross_encoder.training.arguments import ModelArguments

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    folder = tmp_path / "bin_only"
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(InputError) as e:
        load_model(ModelArguments(model_name_or_path=str(folder)))
    msg = str(e.value)
    assert "no safetensors weights" in msg and "use_safetensors=False" in msg
    assert "\n" not in msg
