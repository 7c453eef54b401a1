"""Typed configuration: one ``Settings`` type, one value per environment.

``local``, ``dev``, ``staging`` and ``prod`` are *values* of the same type, read
from one file (``rankops.toml``: a ``[defaults]`` table deep-merged with the
``[env.<name>]`` table), then overlaid with ``RANKOPS_<SECTION>__<KEY>``
environment variables (how cloud jobs receive resource names). Unknown keys are
errors, so a typo never silently falls back to a default; every error names the
key and where it came from.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rankops.config_aws import AwsConfig
from rankops.config_sections import (
    EvaluationConfig,
    ExplorationConfig,
    GateConfig,
    LabelConfig,
    LakeConfig,
    MlflowConfig,
    OnlineStoreConfig,
    PipelineConfig,
    ReleaseConfig,
    ServingConfig,
    SparkConfig,
    SyntheticConfig,
    TrainingConfig,
)
from rankops.errors import ConfigError
from rankops.features.settings import FeaturesConfig

EnvName = Literal["local", "dev", "staging", "prod"]
ENVIRONMENTS: tuple[str, ...] = ("local", "dev", "staging", "prod")
CONFIG_FILE_NAME = "rankops.toml"
DEFAULT_HOME = ".rankops"
_RESERVED_ENV_VARS = {"RANKOPS_HOME", "RANKOPS_ENV", "RANKOPS_CONFIG"}


class Settings(BaseModel):
    """Everything a rankops process needs to know about its environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: EnvName = "local"
    home: Path = Field(default_factory=lambda: Path(DEFAULT_HOME).resolve())
    project: str = "rankops"
    lake: LakeConfig = LakeConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    spark: SparkConfig = SparkConfig()
    features: FeaturesConfig = FeaturesConfig()
    online_store: OnlineStoreConfig = OnlineStoreConfig()
    labels: LabelConfig = LabelConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    gate: GateConfig = GateConfig()
    mlflow: MlflowConfig = MlflowConfig()
    serving: ServingConfig = ServingConfig()
    exploration: ExplorationConfig = ExplorationConfig()
    release: ReleaseConfig = ReleaseConfig()
    pipeline: PipelineConfig = PipelineConfig()
    aws: AwsConfig = AwsConfig()

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _cloud_needs_s3(self) -> Settings:
        if self.env != "local" and self.lake.root and not self.lake.root.startswith("s3://"):
            raise ValueError(f"lake.root must be an s3:// URI in env {self.env!r}, got {self.lake.root!r}")
        return self

    @property
    def is_local(self) -> bool:
        return self.env == "local"

    def mlflow_tracking_uri(self) -> str:
        """MLflow tracking URI: configured one, else sqlite under ``home``."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    def mlflow_artifact_root(self) -> str:
        """Where a new MLflow experiment keeps its artifacts: the configured root, else ``mlflow/`` in
        the artifacts zone when that zone is in S3 (the managed tracking server's artifact store),
        else a folder under ``home``."""
        if self.mlflow.artifact_root:
            return self.mlflow.artifact_root
        lake = self.lake
        artifacts = lake.artifacts or (f"{lake.root.rstrip('/')}/artifacts" if lake.root else None)
        if artifacts and artifacts.startswith("s3://"):
            return f"{artifacts.rstrip('/')}/mlflow"
        return (self.home / "mlflow" / "artifacts").as_uri()


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file: ``explicit``, else ``$RANKOPS_CONFIG``, else the nearest
    ``rankops.toml`` in the working directory or its parents, else none (defaults)."""
    candidate = explicit or os.environ.get("RANKOPS_CONFIG")
    if candidate:
        path = Path(candidate).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist (from --config or RANKOPS_CONFIG)")
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        path = folder / CONFIG_FILE_NAME
        if path.is_file():
            return path
    return None


def read_config_file(path: Path | None) -> dict[str, Any]:
    """Parse and shape-check the config file (``[defaults]`` and ``[env.<name>]`` only)."""
    if path is None:
        return {}
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the config file as UTF-8") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file: {err.strerror or err}") from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    unknown = set(data) - {"defaults", "env"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level table(s) {sorted(unknown)}; expected [defaults] and [env.<name>]")
    for key, header in (("defaults", "[defaults]"), ("env", "[env.<name>]")):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{path}: {key!r} must be a table ({header}), got {type(data[key]).__name__}")
    bad_envs = set(data.get("env", {})) - set(ENVIRONMENTS)
    if bad_envs:
        raise ConfigError(
            f"{path}: unknown environment(s) {sorted(bad_envs)} under [env]; expected one of {ENVIRONMENTS}"
        )
    for name, table in data.get("env", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: env.{name} must be a table ([env.{name}]), got {type(table).__name__}")
    return data


def _deep_merge(
    base: dict[str, Any],
    top: Mapping[str, Any],
    origin: dict[tuple[str, ...], str],
    label: str,
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Merge ``top`` into a copy of ``base``, remembering where each leaf came from."""
    merged = dict(base)
    for key, value in top.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value, origin, label, path)
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
            origin[path] = label
    return merged


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``RANKOPS_SERVING__PORT=9000`` -> ``{"serving": {"port": 9000}}`` (JSON values allowed)."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("RANKOPS_") or name in _RESERVED_ENV_VARS or "__" not in name:
            continue
        parts = [p.lower() for p in name[len("RANKOPS_") :].split("__")]
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = tree
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                prefix = "__".join(p.upper() for p in parts[: i + 1])
                raise ConfigError(f"environment variable {name}: RANKOPS_{prefix} is set to a value, not a section")
        node[parts[-1]] = value
    return tree


def _describe(err: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for item in err.errors():
        loc = tuple(str(p) for p in item["loc"])
        source = next((origin[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in origin), "defaults")
        key = ".".join(loc) or "(root)"
        lines.append(f"{key}: {item['msg']} (from {source})")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(
    env: str | None = None,
    home: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    overrides_label: str = "overrides",
) -> Settings:
    """Build the settings of one environment. Raises ``ConfigError`` naming any bad key.

    ``overrides`` (a nested mapping, e.g. ``{"gate": {"ndcg_floor": 0.4}}``) apply last: the
    pipeline passes its execution input's ``overrides`` to every job this way; ``overrides_label``
    names where they came from in error messages (the CLI's ``--set``)."""
    environ = os.environ if environ is None else environ
    env_name = env or environ.get("RANKOPS_ENV") or "local"
    if env_name not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env_name!r}; expected one of {', '.join(ENVIRONMENTS)}")
    path = find_config_file(config_file)
    data = read_config_file(path)
    origin: dict[tuple[str, ...], str] = {}
    file_label = str(path.name if path else CONFIG_FILE_NAME)
    merged = _deep_merge({}, data.get("defaults", {}), origin, f"{file_label} [defaults]")
    merged = _deep_merge(merged, data.get("env", {}).get(env_name, {}), origin, f"{file_label} [env.{env_name}]")
    merged = _deep_merge(merged, _env_overrides(environ), origin, "environment variable RANKOPS_...")
    merged = _deep_merge(merged, overrides or {}, origin, overrides_label)
    merged["env"] = env_name
    home_value, home_source = next(
        (value, source)
        for value, source in (
            (home, "--home"),
            (environ.get("RANKOPS_HOME"), "RANKOPS_HOME"),
            (merged.get("home"), origin.get(("home",), "the configuration")),
            (DEFAULT_HOME, "the default"),
        )
        if value
    )
    if not isinstance(home_value, str | os.PathLike):
        raise ConfigError(f"home: expected a folder path, got {home_value!r} (from {home_source})")
    home_path = Path(home_value).expanduser()
    if home_path.exists() and not home_path.is_dir():
        raise ConfigError(f"home {str(home_path)!r} is not a folder (from {home_source}); point it at a directory")
    merged["home"] = home_path
    try:
        return Settings.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_describe(err, origin)) from err


@lru_cache(maxsize=8)
def get_settings(env: str | None = None, home: str | None = None) -> Settings:
    """Cached ``load_settings`` for long-lived processes (server, handlers)."""
    return load_settings(env=env, home=home)
