"""The SageMaker container contracts: paths from SM_* variables or the /opt/ml layout under a base."""

import json
from pathlib import Path

import pytest

from rankops.errors import ConfigError, DataError
from rankops.sagemaker_contract import (
    layout_training,
    processing_paths,
    read_hyperparameters,
    training_paths,
    write_hyperparameters,
)


def test_processing_paths_follow_the_container_layout_under_a_base(tmp_path: Path) -> None:
    paths = processing_paths({}, tmp_path)
    assert paths.input("holdout") == tmp_path / "opt/ml/processing/input/holdout"
    assert paths.output("train") == tmp_path / "opt/ml/processing/output/train"
    in_container = processing_paths({})
    assert in_container.output("train") == Path("/opt/ml/processing/output/train")
    from_env = processing_paths({"RANKOPS_SM_BASE": str(tmp_path)})
    assert from_env.input_dir == tmp_path / "opt/ml/processing/input"


def test_processing_paths_can_move_one_input_or_every_output(tmp_path: Path) -> None:
    paths = processing_paths({}, tmp_path, output_dir=tmp_path / "out", inputs={"model": tmp_path / "m"})
    assert paths.input("model") == tmp_path / "m"
    assert paths.input("holdout") == tmp_path / "opt/ml/processing/input/holdout"
    assert paths.output("evaluation") == tmp_path / "out/evaluation"


def test_training_paths_prefer_sm_variables_over_the_layout(tmp_path: Path) -> None:
    (tmp_path / "opt/ml/input/data/train").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    env = {"SM_CHANNEL_VALIDATION": str(tmp_path / "elsewhere"), "SM_MODEL_DIR": str(tmp_path / "model")}
    paths = training_paths(env, tmp_path)
    assert paths.channel("train") == tmp_path / "opt/ml/input/data/train"
    assert paths.channel("validation") == tmp_path / "elsewhere"
    assert paths.model_dir == tmp_path / "model"
    assert paths.output_data_dir == tmp_path / "opt/ml/output/data"
    assert paths.hyperparameters_file == tmp_path / "opt/ml/input/config/hyperparameters.json"


def test_a_missing_channel_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="training channel 'validation' is missing"):
        training_paths({}, tmp_path).channel("validation")


def test_hyperparameters_are_strings_on_disk_and_typed_when_read(tmp_path: Path) -> None:
    path = tmp_path / "hp.json"
    write_hyperparameters(path, {"num_leaves": 63, "learning_rate": 0.1, "objective": "lambdarank", "eval_at": [5]})
    on_disk = json.loads(path.read_text())
    assert all(isinstance(v, str) for v in on_disk.values())
    assert read_hyperparameters(path) == {
        "num_leaves": 63,
        "learning_rate": 0.1,
        "objective": "lambdarank",
        "eval_at": [5],
    }
    assert read_hyperparameters(tmp_path / "none.json") == {}


def test_bad_hyperparameter_files_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "hp.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        read_hyperparameters(path)
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_hyperparameters(path)


def test_layout_training_points_channels_at_existing_folders(tmp_path: Path) -> None:
    train, valid = tmp_path / "p/train", tmp_path / "p/validation"
    train.mkdir(parents=True)
    valid.mkdir(parents=True)
    env = layout_training(tmp_path / "job", {"train": train, "validation": valid}, {"seed": 3})
    paths = training_paths(env, tmp_path / "job")
    assert (paths.channel("train"), paths.channel("validation")) == (train, valid)
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert paths.model_dir.is_dir() and read_hyperparameters(paths.hyperparameters_file) == {"seed": 3}


def test_a_failing_job_says_why_in_one_line_and_in_the_failure_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagemaker_jobs.training import entry
    from tests.conftest import REPO

    argv = ["--base-dir", str(tmp_path), "--config", str(REPO / "rankops.toml"), "--num_leaves", "63"]
    assert entry.main(argv, {"RANKOPS_HOME": str(tmp_path / "home")}) == 2  # script-mode extras are ignored
    err = capsys.readouterr().err
    assert err.startswith("training: error: training channel 'train' is missing") and err.count("\n") == 1
    assert (tmp_path / "opt/ml/output/failure").read_text() == err
