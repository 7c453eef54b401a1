"""MLflow verbs: experiments, logging a ranker, aliases, promotion, listing and archiving.

Locally MLflow is a sqlite file under ``RANKOPS_HOME``; in AWS it is SageMaker
managed MLflow. Only the tracking URI differs. Aliases (``champion``,
``challenger``, ``previous``) name the versions that matter; stages are not used.
MLflow 3 has no "archived" stage either: a version older than
``mlflow.archive_after_days`` that holds no alias and is not its model's newest gets the tags
``archived=true`` and ``archived_at``; it is never deleted (its lineage stays resolvable).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankops import integrity, ranker_model
from rankops.errors import ModelError

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd
    from mlflow import MlflowClient

    from rankops.config import Settings

log = logging.getLogger("rankops.registry")
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)
FALLBACK_SUFFIX = "-fallback"
RULE_SUFFIX = "-rule"
ARCHIVED_TAG, ARCHIVED_AT_TAG = "archived", "archived_at"
IDEMPOTENCY_TAG = "idempotency_key"


def fallback_model_name(settings: Settings) -> str:
    """Registered name of the small robust model the server falls back to."""
    return settings.mlflow.model_name + FALLBACK_SUFFIX


def rule_model_name(settings: Settings) -> str:
    """Registered name of the rule baseline (a pyfunc around ``baseline.rule_scores``)."""
    return settings.mlflow.model_name + RULE_SUFFIX


def model_names(settings: Settings) -> list[str]:
    return [settings.mlflow.model_name, fallback_model_name(settings), rule_model_name(settings)]


def connect(settings: Settings) -> tuple[MlflowClient, str]:
    """Point MLflow at this environment and return a client and the experiment id."""
    import mlflow
    from mlflow import MlflowClient

    uri = settings.mlflow_tracking_uri()
    if uri.startswith("sqlite:///"):
        (settings.home / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    if experiment is not None:
        return client, experiment.experiment_id
    return client, client.create_experiment(
        settings.mlflow.experiment, artifact_location=settings.mlflow_artifact_root()
    )


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str
    model_uri: str


def metric_key(name: str) -> str:
    """A name MLflow accepts for metrics and tags: ``ndcg@10`` -> ``ndcg_at_10``, and any other
    character outside letters, digits, ``_ - . /`` (e.g. in a category name) -> ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./]", "_", name.replace("@", "_at_"))


def log_params_and_metrics(
    run_id: str,
    params: dict[str, Any],
    history: dict[str, list[float]],
    metrics: dict[str, float],
    prefix: str = "",
) -> None:
    """Parameters (stringified) plus the per-iteration ``history`` and final ``metrics``, in
    ``log_batch`` calls (hundreds of single ``log_metric`` calls would cost seconds on sqlite
    and minutes on a remote server)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    batch = [
        Metric(metric_key(prefix + k), float(v), now, step) for k, vs in history.items() for step, v in enumerate(vs)
    ]
    batch += [Metric(metric_key(prefix + k), float(v), now, 0) for k, v in metrics.items()]
    client = MlflowClient()
    param_list = [Param(prefix + k, str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(batch), 1000):  # log_batch takes at most 1000 metrics per call
        client.log_batch(run_id, metrics=batch[start : start + 1000])
    for start in range(0, len(param_list), 100):  # and at most 100 params
        client.log_batch(run_id, params=param_list[start : start + 100])


def register(model_uri: str, name: str, run_id: str, tags: dict[str, str] | None = None) -> RegisteredModel:
    """A new version of ``name`` from a logged model, its tags set at creation (so an
    idempotency tag can never be missing from a version that exists)."""
    import mlflow

    created = mlflow.register_model(model_uri, name, tags=tags or {})
    version = str(created.version)
    return RegisteredModel(name, version, run_id, f"models:/{name}/{version}")


def log_ranker(
    settings: Settings,
    booster: lgb.Booster,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    history: dict[str, list[float]],
    input_example: pd.DataFrame,
    tags: dict[str, str],
    run_name: str = "train",
    registered_name: str | None = None,
) -> RegisteredModel:
    """Log one trained ranker in its own run (params, per-iteration and final metrics,
    model with signature and input example) and register it as a new version."""
    import mlflow

    _, experiment_id = connect(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        log_params_and_metrics(run.info.run_id, params, history, metrics)
        uri = ranker_model.log_model(booster, input_example, "model")
        return register(uri, registered_name or settings.mlflow.model_name, run.info.run_id)


def _model_name(settings: Settings, name: str | None) -> str:
    return name or settings.mlflow.model_name


def set_alias(settings: Settings, alias: str, version: str, name: str | None = None) -> None:
    client, _ = connect(settings)
    client.set_registered_model_alias(_model_name(settings, name), alias, version)


def delete_alias(settings: Settings, alias: str, name: str | None = None) -> None:
    """Remove ``alias`` (no error if no version holds it)."""
    if alias in aliases(settings, name):
        client, _ = connect(settings)
        client.delete_registered_model_alias(_model_name(settings, name), alias)


def aliases(settings: Settings, name: str | None = None) -> dict[str, str]:
    """alias -> version of a registered model (empty if the model does not exist)."""
    from mlflow.exceptions import MlflowException

    client, _ = connect(settings)
    try:
        model = client.get_registered_model(_model_name(settings, name))
    except MlflowException:
        return {}
    return {alias: str(version) for alias, version in model.aliases.items()}


def alias_version(settings: Settings, alias: str, name: str | None = None) -> str | None:
    """The version holding ``alias``, or ``None`` if no version holds it (or no model exists)."""
    return aliases(settings, name).get(alias)


def promote(settings: Settings, version: str, name: str | None = None) -> dict[str, str | None]:
    """Make ``version`` the champion: the old champion becomes ``previous`` and a
    ``challenger`` alias on ``version`` is consumed. Re-promoting the champion changes nothing.
    Returns the aliases before the move (for lineage and rollback)."""
    before = aliases(settings, name)
    old = before.get(CHAMPION)
    if old != version:
        if old is not None:
            set_alias(settings, PREVIOUS, old, name)
        set_alias(settings, CHAMPION, version, name)
    if before.get(CHALLENGER) == version:
        delete_alias(settings, CHALLENGER, name)
    return {a: before.get(a) for a in ALIASES}


def find_version(settings: Settings, tag: str, value: str, name: str | None = None) -> str | None:
    """The newest version of ``name`` whose tag ``tag`` equals ``value``, if any."""
    client, _ = connect(settings)
    found = client.search_model_versions(f"name = '{_model_name(settings, name)}' and tags.{tag} = '{value}'")
    return str(max(int(v.version) for v in found)) if found else None


def set_version_tags(settings: Settings, version: str, tags: dict[str, str], name: str | None = None) -> None:
    client, _ = connect(settings)
    for key, value in tags.items():
        client.set_model_version_tag(_model_name(settings, name), version, key, str(value))


def load_booster(settings: Settings, alias: str = CHAMPION, name: str | None = None) -> tuple[lgb.Booster, str]:
    """The LightGBM booster holding ``alias`` and its version."""
    name = _model_name(settings, name)
    version = alias_version(settings, alias, name)
    if version is None:
        raise ModelError(f"no version of model {name!r} holds alias {alias!r}; train one with `rankops train`")
    return load_version_booster(settings, version, name), version


def version_tags(settings: Settings, version: str, name: str | None = None) -> dict[str, str]:
    """A version's tags; ModelError naming the model and version when it does not exist."""
    from mlflow.exceptions import MlflowException

    client, _ = connect(settings)
    try:
        return dict(client.get_model_version(_model_name(settings, name), version).tags)
    except MlflowException as err:
        raise ModelError(f"model {_model_name(settings, name)!r} has no version {version!r}: {err}") from None


def gated_sha256(settings: Settings, version: str, name: str | None = None) -> str | None:
    """The SHA-256 the gate recorded for a version's model file (``gate.sha256``), if it was gated."""
    return version_tags(settings, version, name).get(integrity.GATE_TAG) or None


def load_version_booster(settings: Settings, version: str, name: str | None = None) -> lgb.Booster:
    """One registered version's booster (see :func:`rankops.ranker_model.load_model`), refused when
    its model file is not the one the gate judged (a version the gate never saw loads unchecked)."""
    name = _model_name(settings, name)
    expected = gated_sha256(settings, version, name)
    if expected is None:
        log.warning("version %s of %s carries no %s: never gated, loaded unverified", version, name, integrity.GATE_TAG)
    return ranker_model.load_model(f"models:/{name}/{version}", expected)


def download_model(settings: Settings, version: str, dst: Path, name: str | None = None) -> Path:
    """Copy a registered version's MLflow model directory into ``dst`` (created, must be empty)."""
    import mlflow

    connect(settings)
    dst.mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(f"models:/{_model_name(settings, name)}/{version}", dst_path=str(dst))
    return Path(local)


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    created: datetime
    run_id: str
    aliases: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def archived(self) -> bool:
        return self.tags.get(ARCHIVED_TAG) == "true"


def list_versions(settings: Settings, names: list[str] | None = None) -> list[VersionInfo]:
    """Every version of the given models (default: ranker, fallback, rule), newest first."""
    client, _ = connect(settings)
    rows: list[VersionInfo] = []
    for name in names or model_names(settings):
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases(settings, name).items():
            by_version.setdefault(version, []).append(alias)
        rows.extend(
            VersionInfo(
                name,
                str(v.version),
                datetime.fromtimestamp(v.creation_timestamp / 1000, UTC),
                v.run_id or "",
                tuple(sorted(by_version.get(str(v.version), []))),
                dict(v.tags),
            )
            for v in client.search_model_versions(f"name = '{name}'")
        )
    return sorted(rows, key=lambda r: (r.name, -int(r.version)))


def archive_stale(settings: Settings, names: list[str] | None = None, now: datetime | None = None) -> list[VersionInfo]:
    """Tag versions older than ``mlflow.archive_after_days`` that hold no alias as archived, and
    un-archive any archived version that holds an alias again (e.g. after a rollback).
    The newest version of each model is never archived: it is the one in use even without an
    alias (the rule baseline, registered once per revision of its code, never holds one).
    Returns the versions archived by this call (already archived ones are left alone)."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.mlflow.archive_after_days)
    archived = []
    seen: set[str] = set()
    for info in list_versions(settings, names):  # newest first within each model
        newest = info.name not in seen
        seen.add(info.name)
        if info.archived and (info.aliases or newest):
            client, _ = connect(settings)
            for tag in (ARCHIVED_TAG, ARCHIVED_AT_TAG):
                client.delete_model_version_tag(info.name, info.version, tag)
        if info.aliases or newest or info.archived or info.created >= cutoff:
            continue
        set_version_tags(settings, info.version, {ARCHIVED_TAG: "true", ARCHIVED_AT_TAG: now.isoformat()}, info.name)
        archived.append(info)
    return archived
