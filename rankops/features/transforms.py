"""The maths of on-demand features, one function per feature, knowing no feature names.

The registry attaches each function to its declaration with the columns it reads
(``inputs``); :func:`rankops.features.on_demand.compute` calls them in that order for the
training-set builder and the server alike. Each takes the request (its time, its query
category) and float columns, and returns one float column (NaN where undefined).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class OnDemandRequest:
    """Per-row arrays (training) or scalars broadcast over one request's candidates (serving)."""

    ts_s: np.ndarray | float
    category_code: np.ndarray | float


def age_days(request: OnDemandRequest, created_s: np.ndarray) -> np.ndarray:
    """Days from ``created_s`` to the request, never negative; unknown stays NaN."""
    age = (np.asarray(request.ts_s, dtype=np.float64) - created_s) / SECONDS_PER_DAY
    return np.where(np.isnan(created_s), np.nan, np.maximum(age, 0.0))


def matches_query_category(request: OnDemandRequest, code: np.ndarray) -> np.ndarray:
    """1.0 where the category code is the query's, else 0.0."""
    return (code == np.asarray(request.category_code, dtype=np.float64)).astype(np.float64)


def relative_deviation(request: OnDemandRequest, value: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``value / mean - 1`` where both are positive, else NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((mean > 0) & (value > 0), value / mean - 1.0, np.nan)


def log_z_score(request: OnDemandRequest, value: np.ndarray, log_mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """z-score of ``log(value)`` against a log mean and standard deviation (NaN if undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(value > 0, value, 1.0))
        return np.where((value > 0) & (log_std > 0), (logs - log_mean) / log_std, np.nan)
