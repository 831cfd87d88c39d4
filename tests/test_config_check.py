"""The workflow's config check against the real schema: one line per mistake, a "did you
mean" for typos, strings from ``--config`` turned back into numbers and booleans."""

import pytest
import yaml
from conftest import REPO

from cross_encoder.workflow.config_check import ConfigError, check_config, coerce_strings, problems

SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_FILE.read_text())


def demo_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "scifact.yaml", "msmarco.yaml"])
def test_shipped_configs_pass(name):
    assert problems(yaml.safe_load((REPO / "config" / name).read_text()), SCHEMA) == []


def test_typo_gets_a_did_you_mean():
    config = demo_config()
    config["train"]["learning_rat"] = 1e-4
    (line,) = problems(config, SCHEMA)
    assert line.startswith("train: unknown key 'learning_rat'; did you mean 'learning_rate'?")


def test_strings_from_the_command_line_become_numbers_and_booleans():
    config = {"train": {"learning_rate": "3e-5", "seed": "7", "trust_remote_code": "true"}}
    coerce_strings(config, SCHEMA)
    assert config["train"] == {"learning_rate": 3e-5, "seed": 7, "trust_remote_code": True}
    config = {"train": {"report_to": "tensorboard", "learning_rate": "fast"}}
    coerce_strings(config, SCHEMA)
    assert config["train"] == {"report_to": "tensorboard", "learning_rate": "fast"}


def test_every_mistake_in_one_line_naming_the_files(tmp_path):
    config = demo_config()
    config["train"]["learning_rate"] = "fast"
    config["trian"] = {}
    with pytest.raises(ConfigError) as e:
        check_config(config, SCHEMA_FILE, [tmp_path / "my.yaml"])
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"config error in {tmp_path / 'my.yaml'}: ")
    assert "train.learning_rate: 'fast' is not of type 'number'" in message
    assert "unknown key 'trian'; did you mean 'train'?" in message


def test_renamed_keys_still_work_with_a_warning(capsys):
    config = demo_config()
    config["preprocess"]["max_seq_length"] = config["preprocess"].pop("max_len")
    config.setdefault("distill", {})["max_length"] = 64
    check_config(config, SCHEMA_FILE)
    assert config["preprocess"]["max_len"] == 128 and "max_seq_length" not in config["preprocess"]
    assert config["distill"]["max_len"] == 64
    err = capsys.readouterr().err
    assert "preprocess.max_seq_length is now preprocess.max_len" in err
    assert "distill.max_length is now distill.max_len" in err
