"""Off-policy evaluation on the lake's feedback log: re-score the logged slates with a model.

The server logs, per answer, the items in the order shown with their propensities, the
logging ``policy`` and the feature values it scored them on (``features``,
rankops/feedback/record.py); outcomes join back by request and position
(:func:`rankops.feedback.store.join_outcomes`). A registered model version re-scores each
logged slate from those logged features -- exactly what it would have seen serving -- and its
ranking of the slate is the target of :func:`rankops.ope.logged.evaluate_ranker` (clicks and
contacts per request) or of :func:`rankops.ope.lift.compare` (the off-policy gate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rankops import registry
from rankops.errors import DataError
from rankops.feedback import store
from rankops.ope.logged import COLUMNS, evaluate_ranker

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config import Settings
    from rankops.lake import Lake

OUTCOMES = ("click", "contact")
FeedbackReader = Callable[[datetime | None, datetime | None], pa.Table]


@dataclass(frozen=True)
class LoggedSlates:
    """One row per shown position (``request_id``, ``position``, ``item_id``, ``propensity``,
    ``policy``, outcome counts) and the logged feature values of every row."""

    rows: pd.DataFrame
    features: dict[str, np.ndarray]
    requests: int
    without_features: int  # answers logged without features (e.g. deterministic ones in data capture)
    policies: dict[str, int]  # logged answers per logging policy

    def table(self, outcome: str = "click") -> pa.Table:
        """The logged-ranking table :func:`rankops.ope.logged.evaluate_ranker` reads."""
        frame = self.rows.rename(columns={outcome: "clicked"})
        frame["clicked"] = frame["clicked"].astype(float)
        return pa.Table.from_pandas(frame[list(COLUMNS)], preserve_index=False)


def load(
    lake: Lake,
    since: datetime | None = None,
    until: datetime | None = None,
    policies: Sequence[str] | None = None,
    read: FeedbackReader | None = None,
) -> LoggedSlates:
    """The logged slates of ``[since, until)`` answered by one of ``policies`` (default: all).
    ``read(since, until)`` gives the feedback table (default the lake's log; in AWS the endpoint's
    data capture, :func:`rankops.feedback.store.capture_reader`); outcomes come from the lake."""
    feedback = read(since, until) if read is not None else store.read(lake, since, until)
    if policies:
        feedback = feedback.filter(pc.is_in(feedback["policy"], pa.array(policies)))
    counted = {str(k): int(v) for k, v in pd.Series(feedback["policy"].to_pylist()).value_counts().items()}
    has_features = pc.invert(pc.is_null(feedback["features"]))
    without = feedback.num_rows - int(pc.sum(has_features).as_py() or 0)
    feedback = feedback.filter(has_features)
    if feedback.num_rows == 0:
        window = f" since {since:%Y-%m-%d}" if since else ""
        which = f" by policy {', '.join(policies)}" if policies else ""
        raise DataError(f"no logged answers{which}{window} with scored features in the feedback log")
    rows = store.join_outcomes(feedback, store.read_outcomes(lake, since).to_pandas())
    docs = [json.loads(text) for text in feedback["features"].to_pylist()]
    sizes = [len(items) for items in feedback["items"].to_pylist()]
    names = sorted({name for doc in docs for name in doc})
    features = {
        name: np.concatenate(
            [np.asarray(doc.get(name, [np.nan] * n), dtype=float) for doc, n in zip(docs, sizes, strict=True)]
        )
        for name in names
    }
    keep = ["request_id", "position", "item_id", "propensity", "policy", *OUTCOMES]
    frame = rows[keep].assign(propensity=rows["propensity"].astype(float), position=rows["position"].astype(int))
    return LoggedSlates(frame.reset_index(drop=True), features, feedback.num_rows, without, counted)


def score(slates: LoggedSlates, booster: lgb.Booster, version: str = "") -> np.ndarray:
    """``booster``'s score of every logged row, from the features logged with it."""
    names = list(booster.feature_name())
    missing = [n for n in names if n not in slates.features]
    if missing:
        raise DataError(f"model {version or ''} reads feature {missing[0]!r}, which the feedback log does not record")
    matrix = np.column_stack([slates.features[n] for n in names])
    return np.asarray(booster.predict(matrix, num_threads=1), dtype=float)


def resolve_version(settings: Settings, policy: str) -> str:
    """``champion`` / ``challenger`` (registry aliases) or a version number -> the version."""
    if policy.isdigit():
        return policy
    if policy not in (registry.CHAMPION, registry.CHALLENGER):
        raise DataError(f"--policy must be champion, challenger or a model version number, got {policy!r}")
    version = registry.alias_version(settings, policy)
    if version is None:
        raise DataError(f"no model version holds the {policy!r} alias in {settings.mlflow.model_name!r}")
    return version


def evaluate_version(
    settings: Settings, slates: LoggedSlates, version: str, n_boot: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Clicks and contacts per request of ``version``'s rankings of the logged slates."""
    booster = registry.load_version_booster(settings, version)
    scores = score(slates, booster, version)
    return {
        "model": settings.mlflow.model_name,
        "version": version,
        "logged_answers": slates.policies,
        "without_features": slates.without_features,
        **{outcome: evaluate_ranker(slates.table(outcome), scores, n_boot, seed) for outcome in OUTCOMES},
    }
