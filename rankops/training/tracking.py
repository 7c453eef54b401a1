"""Feature importance of a training run, recorded in MLflow as a table and a plot.

Parameters and metrics are logged by :func:`rankops.registry.log_params_and_metrics`, the
models by :mod:`rankops.ranker_model`. The plot is drawn with matplotlib's object API (no
pyplot state), so runs in threads do not interfere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rankops.training.train import TrainResult


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
