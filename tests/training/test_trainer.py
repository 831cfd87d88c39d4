"""``cross_encoder.training.trainer``: resuming from the last complete checkpoint."""

from __future__ import annotations

from cross_encoder.training import trainer


def test_last_complete_checkpoint_skips_a_checkpoint_cut_by_a_kill(tmp_path, caplog):
    good = tmp_path / "checkpoint-4"
    cut = tmp_path / "checkpoint-8"
    for c in (good, cut):
        c.mkdir()
        (c / "model.safetensors").write_bytes(b"x")
        (c / "rng_state.pth").write_bytes(b"x")
    (good / "trainer_state.json").write_text('{"global_step": 4}')
    (cut / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    (tmp_path / "checkpoint-12").mkdir()  # killed before anything was written
    assert trainer.last_complete_checkpoint(str(tmp_path)) == str(good)
    assert "skipping" in caplog.text and "checkpoint-8" in caplog.text
