from pathlib import Path

import pytest

from rankops.config import ENVIRONMENTS, load_settings
from rankops.errors import ConfigError

REPO_TOML = Path(__file__).resolve().parents[2] / "rankops.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rankops.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_in_the_repository_config_is_valid(env: str, tmp_path: Path) -> None:
    settings = load_settings(env=env, home=tmp_path, config_file=REPO_TOML, environ={})
    assert settings.env == env
    assert settings.home == tmp_path.resolve()


def test_environments_differ_only_by_data(tmp_path: Path) -> None:
    dev = load_settings(env="dev", home=tmp_path, config_file=REPO_TOML, environ={})
    prod = load_settings(env="prod", home=tmp_path, config_file=REPO_TOML, environ={})
    assert type(dev) is type(prod)
    assert prod.pipeline.approval_required and not dev.pipeline.approval_required
    assert prod.aws.multi_az and not dev.aws.multi_az


def test_env_table_overrides_defaults_deeply(tmp_path: Path) -> None:
    cfg = write(
        tmp_path, "[defaults]\nserving.port = 9000\nserving.max_candidates = 50\n[env.dev]\nserving.port = 9100\n"
    )
    dev = load_settings(env="dev", home=tmp_path, config_file=cfg, environ={})
    assert (dev.serving.port, dev.serving.max_candidates) == (9100, 50)
    local = load_settings(env="local", home=tmp_path, config_file=cfg, environ={})
    assert local.serving.port == 9000


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[defaults]\nserving.port = 9000\n")
    settings = load_settings(
        home=tmp_path,
        config_file=cfg,
        environ={"RANKOPS_SERVING__PORT": "9200", "RANKOPS_RELEASE__CANARY_STEPS": "[0.2, 1.0]"},
    )
    assert settings.serving.port == 9200
    assert settings.release.canary_steps == [0.2, 1.0]


def test_home_comes_from_flag_then_environment(tmp_path: Path) -> None:
    from_env = load_settings(config_file=write(tmp_path, ""), environ={"RANKOPS_HOME": str(tmp_path / "h1")})
    assert from_env.home == (tmp_path / "h1").resolve()
    flag = load_settings(
        home=tmp_path / "h2", config_file=tmp_path / "rankops.toml", environ={"RANKOPS_HOME": str(tmp_path / "h1")}
    )
    assert flag.home == (tmp_path / "h2").resolve()


def test_unknown_key_is_named_with_its_source(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[env.dev]\nserving.prot = 1\n")
    with pytest.raises(
        ConfigError, match=r"serving\.prot: Extra inputs are not permitted \(from rankops.toml \[env.dev\]\)"
    ):
        load_settings(env="dev", home=tmp_path, config_file=cfg, environ={})


def test_bad_value_from_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"serving\.port: .*valid integer.*environment variable"):
        load_settings(home=tmp_path, config_file=write(tmp_path, ""), environ={"RANKOPS_SERVING__PORT": "http"})


def test_unknown_environment_and_tables_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        load_settings(env="qa", home=tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"unknown environment\(s\) \['qa'\] under \[env\]"):
        load_settings(home=tmp_path, config_file=write(tmp_path, "[env.qa]\n"), environ={})
    with pytest.raises(ConfigError, match="unknown top-level table"):
        load_settings(home=tmp_path, config_file=write(tmp_path, "[serving]\nport = 1\n"), environ={})


def test_invalid_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(home=tmp_path, config_file=write(tmp_path, "[defaults\n"), environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(home=tmp_path, config_file=tmp_path / "nope.toml", environ={})


def test_cloud_lake_must_be_s3(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lake\.root must be an s3:// URI"):
        load_settings(
            env="dev", home=tmp_path, config_file=write(tmp_path, '[env.dev]\nlake.root = "/data"\n'), environ={}
        )


def test_canary_steps_must_rise_to_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="canary_steps"):
        load_settings(
            home=tmp_path, config_file=write(tmp_path, "[defaults]\nrelease.canary_steps = [0.5, 0.1]\n"), environ={}
        )


def test_local_mlflow_lives_under_home(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, config_file=write(tmp_path, ""), environ={})
    assert settings.mlflow_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"


def test_mlflow_artifacts_go_to_the_artifacts_zone_in_s3(tmp_path: Path) -> None:
    """In AWS the experiment's artifact location is the tracking server's store (artifacts/mlflow),
    never a file:// folder inside a job container."""
    config = write(tmp_path, "")
    zone = load_settings(env="dev", home=tmp_path, config_file=config, environ={"RANKOPS_LAKE__ARTIFACTS": "s3://art"})
    assert zone.mlflow_artifact_root() == "s3://art/mlflow"
    root = load_settings(env="dev", home=tmp_path, config_file=config, environ={"RANKOPS_LAKE__ROOT": "s3://lake/p/"})
    assert root.mlflow_artifact_root() == "s3://lake/p/artifacts/mlflow"
    explicit = {"RANKOPS_LAKE__ARTIFACTS": "s3://art", "RANKOPS_MLFLOW__ARTIFACT_ROOT": "s3://elsewhere/mlflow"}
    assert load_settings(env="dev", home=tmp_path, config_file=config, environ=explicit).mlflow_artifact_root() == (
        "s3://elsewhere/mlflow"
    )
    local = load_settings(home=tmp_path, config_file=config, environ={})
    assert local.mlflow_artifact_root() == (tmp_path.resolve() / "mlflow" / "artifacts").as_uri()
