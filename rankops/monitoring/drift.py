"""Drift statistics: reference histograms of a training set, PSI and KL against served traffic.

The reference is computed once from the training split when the dataset is processed and
stored in its manifest (``reference``), so a drift check needs no access to the training rows.
Numeric features get ``bins`` quantile bins (edges from the training values, open-ended at
both ends, so served values outside the training range land in the outer bins); a feature with
at most ``max_levels`` distinct training values (a flag, a code, the query category) is compared
by its value frequencies instead, since quantile edges of a discrete feature collapse. Missing
values are a bin of their own in both cases: a feature that stops arriving is drift too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

EPS = 1e-4  # floor of a bin share, so an empty bin gives a finite (large) PSI instead of infinity
MISSING = "<missing>"
CONTEXT_CATEGORY = "query_category"  # the request context's category, compared like a categorical feature


def reference_histograms(
    frame: pd.DataFrame, numeric: Iterable[str], categorical: Iterable[str] = (), bins: int = 10, max_levels: int = 10
) -> dict[str, dict[str, Any]]:
    """``{column: histogram}`` of the training rows (see the module docstring)."""
    out: dict[str, dict[str, Any]] = {}
    for name in numeric:
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        if values.dropna().nunique() <= max_levels:
            out[name] = _categorical(values.map(lambda v: MISSING if pd.isna(v) else f"{v:g}"))
            continue
        inner = np.unique(np.nanquantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        out[name] = {
            "kind": "numeric",
            "edges": [float(e) for e in inner],
            "shares": _numeric_shares(values.to_numpy(), inner).tolist(),
        }
    for name in categorical:
        out[name] = _categorical(frame[name].astype("string").fillna(MISSING))
    return out


def _categorical(values: pd.Series) -> dict[str, Any]:
    shares = values.value_counts(normalize=True)
    return {"kind": "categorical", "shares": {str(k): float(v) for k, v in shares.items()}}


def _numeric_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of len(edges) + 1 bins, plus a last share for missing values."""
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
    total = max(len(values), 1)
    return np.append(counts, missing.sum()) / total


def served_shares(reference: Mapping[str, Any], values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(expected, actual) shares over the reference's bins for served ``values``."""
    if reference["kind"] == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        return np.asarray(reference["shares"]), _numeric_shares(numbers, np.asarray(reference["edges"]))
    levels = list(reference["shares"])
    if values.dtype.kind == "f":
        labels = values.map(lambda v: MISSING if pd.isna(v) else f"{v:g}")
    else:
        labels = values.astype("string").fillna(MISSING)
    counts = labels.value_counts()
    unseen = float(counts[~counts.index.isin(levels)].sum())
    actual = np.array([float(counts.get(level, 0)) for level in levels] + [unseen]) / max(len(values), 1)
    return np.array([reference["shares"][level] for level in levels] + [0.0]), actual


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum over bins of (actual - expected) * ln(actual / expected)."""
    e, a = np.maximum(expected, EPS), np.maximum(actual, EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) of two histograms over the same bins (shares floored at EPS, renormalized)."""
    p, q = np.maximum(p, EPS), np.maximum(q, EPS)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def score_histogram(scores: np.ndarray, bins: int = 20) -> dict[str, Any]:
    """Reference histogram of scores (quantile edges, as for a numeric feature)."""
    inner = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)[1:-1])) if len(scores) else np.array([])
    return {"kind": "numeric", "edges": inner.tolist(), "shares": _numeric_shares(scores, inner).tolist()}


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
