"""Score drift: the KL divergence of a model's served scores from its scores at training time.

Scores belong to a model, not to a dataset, so the reference is written by the training job with
the model: a histogram (quantile bins, :func:`rankops.monitoring.drift.score_histogram`) of the
new model's scores on the validation rows, logged to its MLflow run as :data:`ARTIFACT` next to
``dataset/manifest.json``. The drift job compares, per model version, the scores the feedback log
recorded for answers that model gave itself (not a fallback level's) with that reference:
``KL(served || reference)`` over the reference's bins, for the whole window and per hour. A model
trained before references were written has none; the report says so instead of a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rankops.monitoring.drift import finite, kl, score_histogram, served_shares

if TYPE_CHECKING:
    import pyarrow as pa

    from rankops.config import Settings

ARTIFACT = "score_reference.json"
MODEL_LEVELS = ("champion", "challenger", "previous")  # fallback levels at which a registered model scored


def score_reference(scores: Any, bins: int = 20) -> dict[str, Any]:
    """What the training job logs: the score histogram and how many scores it summarizes."""
    values = np.asarray(scores, dtype=np.float64)
    return {**score_histogram(values, bins), "rows": len(values), "mean": float(values.mean()) if len(values) else None}


def served_scores(feedback: pa.Table) -> pd.DataFrame:
    """One row per shown score of an answer a registered model gave: ``model_version``, ``hour``, ``score``."""
    frame = feedback.select(["ts", "scores", "model_version", "fallback_level"]).to_pandas()
    frame = frame[frame["fallback_level"].isin(MODEL_LEVELS) & frame["model_version"].notna()]
    rows = frame.explode("scores").rename(columns={"scores": "score"})
    rows["score"] = rows["score"].astype("float64")
    rows["hour"] = rows["ts"].dt.floor("h")
    return rows[["model_version", "hour", "score"]].reset_index(drop=True)


def score_kl(feedback: pa.Table, references: Mapping[str, dict[str, Any] | None]) -> dict[str, Any]:
    """``{version: {"answers"/"scores", "kl", "hourly": [{"start", "scores", "kl"}]}}`` for every
    model version that answered in ``feedback`` (``kl`` is ``None`` without a reference)."""
    rows = served_scores(feedback)
    out: dict[str, Any] = {}
    for version, part in rows.groupby("model_version", sort=True):
        reference = references.get(str(version))
        entry: dict[str, Any] = {"scores": len(part), "reference_rows": (reference or {}).get("rows")}
        if reference is None:
            out[str(version)] = {**entry, "kl": None, "note": "no score reference logged with this model version"}
            continue

        def divergence(values: pd.Series, ref: dict[str, Any] = reference) -> float | None:
            expected, actual = served_shares(ref, values)
            return finite(round(kl(actual, expected), 6))

        by_hour = part.groupby("hour")
        hourly = [{"start": h.isoformat(), "scores": len(p), "kl": divergence(p["score"])} for h, p in by_hour]
        out[str(version)] = {**entry, "kl": divergence(part["score"]), "hourly": hourly}
    return out


def load_references(settings: Settings, versions: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Each version's logged reference from its MLflow run (``None`` where there is none)."""
    import json
    import tempfile
    from pathlib import Path

    from mlflow.exceptions import MlflowException

    from rankops import registry

    client, _ = registry.connect(settings)
    found: dict[str, dict[str, Any] | None] = {}
    for version in versions:
        try:
            run_id = client.get_model_version(settings.mlflow.model_name, version).run_id
            if not run_id:
                found[version] = None
                continue
            with tempfile.TemporaryDirectory() as scratch:
                path = client.download_artifacts(run_id, ARTIFACT, scratch)
                found[version] = json.loads(Path(path).read_text())
        except (MlflowException, OSError, ValueError):
            found[version] = None  # an older model, or one registered without the training job
    return found
