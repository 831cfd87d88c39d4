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


@pytest.mark.parametrize("name", [".", "..", "data", "Data", "a/b", "../x", ""])
def test_a_run_name_that_escapes_or_collapses_onto_results_dir_is_refused(name):
    config = demo_config()
    config["run_name"] = name
    (line,) = problems(config, SCHEMA)
    assert line.startswith(f"run_name: {name!r} is not a folder name of its own under results_dir")


@pytest.mark.parametrize("name", ["default", "a..b", ".hidden", "data2", "run-1_v.2"])
def test_ordinary_run_names_pass(name):
    config = demo_config()
    config["run_name"] = name
    assert problems(config, SCHEMA) == []


def test_a_beir_dataset_that_is_not_a_folder_name_is_refused():
    config = demo_config()
    config["data"]["beir"] = {"dataset": ".."}
    (line,) = problems(config, SCHEMA)
    assert line.startswith("data.beir.dataset: '..' is not a BEIR dataset name")


@pytest.mark.slow
def test_run_name_dot_dot_from_the_command_line_plans_nothing(tmp_path):
    """``snakemake -n eval --config run_name=..`` used to plan results/../model (the project
    root); now the config check stops it with its one line."""
    import subprocess

    from conftest import BIN, workflow_env

    proc = subprocess.run(
        [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory",
         str(tmp_path), "--configfile", str(REPO / "config" / "config.yaml"), "-n", "eval",
         "--config", "run_name=.."],
        capture_output=True, text=True, env=workflow_env(), timeout=300,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config error in" in text
    assert "run_name: '..' is not a folder name of its own under results_dir" in text
    assert "results/../" not in text and "Traceback" not in text
