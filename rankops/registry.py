"""MLflow verbs: experiments, logging a ranker, aliases, loading by alias.

Locally MLflow is a sqlite file under ``RANKOPS_HOME``; in AWS it is SageMaker
managed MLflow. Only the tracking URI differs. Aliases (``champion``,
``challenger``, ``previous``) name the versions that matter; stages are not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version as dist_version
from typing import TYPE_CHECKING, Any

from rankops.errors import ModelError

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd
    from mlflow import MlflowClient

    from rankops.config import Settings

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
FALLBACK_SUFFIX = "-fallback"


def fallback_model_name(settings: Settings) -> str:
    """Registered name of the small robust model the server falls back to."""
    return settings.mlflow.model_name + FALLBACK_SUFFIX


def model_pip_requirements() -> list[str]:
    """Explicit requirements: MLflow's environment inference costs seconds per model."""
    return [
        f"lightgbm=={dist_version('lightgbm')}",
        f"numpy=={dist_version('numpy')}",
        f"pandas=={dist_version('pandas')}",
    ]


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
    """Log one trained ranker (params, per-iteration and final metrics, model with
    signature and input example) and register it as a new version."""
    import mlflow
    from mlflow.models import infer_signature

    _, experiment_id = connect(settings)
    name = registered_name or settings.mlflow.model_name
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        for metric, values in history.items():
            for step, value in enumerate(values):
                mlflow.log_metric(metric.replace("@", "_at_"), value, step=step)
        mlflow.log_metrics({k.replace("@", "_at_"): float(v) for k, v in metrics.items()})
        signature = infer_signature(input_example, booster.predict(input_example.to_numpy()))
        info = mlflow.lightgbm.log_model(
            booster,
            name="model",
            signature=signature,
            input_example=input_example,
            pip_requirements=model_pip_requirements(),
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    return RegisteredModel(name, version, run.info.run_id, f"models:/{name}/{version}")


def set_alias(settings: Settings, alias: str, version: str, name: str | None = None) -> None:
    client, _ = connect(settings)
    client.set_registered_model_alias(name or settings.mlflow.model_name, alias, version)


def alias_version(settings: Settings, alias: str, name: str | None = None) -> str | None:
    """The version holding ``alias``, or ``None`` if no version holds it (or no model exists)."""
    from mlflow.exceptions import MlflowException

    client, _ = connect(settings)
    try:
        return str(client.get_model_version_by_alias(name or settings.mlflow.model_name, alias).version)
    except MlflowException:
        return None


def load_booster(settings: Settings, alias: str = CHAMPION, name: str | None = None) -> tuple[lgb.Booster, str]:
    """The LightGBM booster holding ``alias`` and its version."""
    import mlflow

    name = name or settings.mlflow.model_name
    version = alias_version(settings, alias, name)
    if version is None:
        raise ModelError(f"no version of model {name!r} holds alias {alias!r}; train one with `rankops train`")
    return mlflow.lightgbm.load_model(f"models:/{name}/{version}"), version
