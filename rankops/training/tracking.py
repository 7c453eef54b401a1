"""What a training run records in MLflow: parameters, per-iteration metrics, feature
importance (table and plot), the dataset manifest and the models.

Per-iteration metrics go in one ``log_batch`` call (hundreds of single ``log_metric``
calls would cost seconds on sqlite and minutes on a remote server). The plot is drawn
with matplotlib's object API (no pyplot state), so runs in threads do not interfere.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops import registry

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd
    from matplotlib.figure import Figure

    from rankops.training.train import TrainResult


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
    """Parameters (stringified) plus the per-iteration ``history`` and final ``metrics``."""
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


def importance_figure(importance: dict[str, float], title: str) -> Figure:
    """Horizontal bars of total gain per feature, largest on top."""
    from matplotlib.figure import Figure

    names = sorted(importance, key=importance.__getitem__)
    fig = Figure(figsize=(6, 0.45 * len(names) + 1.2))
    ax = fig.add_subplot()
    ax.barh(names, [importance[n] for n in names], color="#4c72b0")
    ax.set_xlabel("total gain")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def log_importance(run_id: str, result: TrainResult, artifact_dir: str) -> dict[str, float]:
    from mlflow import MlflowClient

    importance = result.importance()
    client = MlflowClient()
    client.log_dict(run_id, importance, f"{artifact_dir}/feature_importance.json")
    client.log_figure(
        run_id,
        importance_figure(importance, f"{artifact_dir}: feature importance (gain)"),
        f"{artifact_dir}/feature_importance.png",
    )
    return importance


def model_signature(booster: lgb.Booster, input_example: pd.DataFrame) -> Any:
    from mlflow.models import infer_signature

    return infer_signature(input_example, np.asarray(booster.predict(input_example.to_numpy(np.float64))))


def log_booster(
    booster: lgb.Booster,
    input_example: pd.DataFrame,
    artifact_name: str,
    registered_name: str,
    run_id: str,
    version_tags: dict[str, str] | None = None,
) -> registry.RegisteredModel:
    """Log a booster (signature, input example, pinned requirements) in the active run and
    register it as a new version of ``registered_name``, its tags set at creation (so an
    idempotency tag can never be missing from a version that exists)."""
    import mlflow

    info = mlflow.lightgbm.log_model(
        booster,
        name=artifact_name,
        signature=model_signature(booster, input_example),
        input_example=input_example,
        pip_requirements=registry.model_pip_requirements(),
    )
    created = mlflow.register_model(info.model_uri, registered_name, tags=version_tags or {})
    version = str(created.version)
    return registry.RegisteredModel(registered_name, version, run_id, f"models:/{registered_name}/{version}")


def save_booster(booster: lgb.Booster, input_example: pd.DataFrame, path: str) -> None:
    """The same MLflow model directory, written locally (``SM_MODEL_DIR``)."""
    import mlflow

    mlflow.lightgbm.save_model(
        booster,
        path,
        signature=model_signature(booster, input_example),
        input_example=input_example,
        pip_requirements=registry.model_pip_requirements(),
    )
