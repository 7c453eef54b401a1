"""On-demand features: computed from stored features and the request, at request time.

One vectorised implementation serves the training-set builder (one call per
batch of joined rows) and the inference server (one call per request), so the
two can never disagree.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

SECONDS_PER_DAY = 86_400.0


def category_code(category: str | None) -> float:
    """Stable numeric code of a category (CRC-32, identical to Spark's ``crc32``)."""
    return float(zlib.crc32(category.encode())) if category else -1.0


def compute(
    stored: Mapping[str, np.ndarray], request_ts_s: np.ndarray | float, query_category_code: np.ndarray | float
) -> dict[str, np.ndarray]:
    """On-demand feature columns for rows of stored features.

    ``request_ts_s`` and ``query_category_code`` are per row (training) or scalars
    broadcast over the candidates of one request (serving).
    """
    created = np.asarray(stored["created_at_s"], dtype=np.float64)
    age_days = (np.asarray(request_ts_s, dtype=np.float64) - created) / SECONDS_PER_DAY
    match = np.asarray(stored["category_code"], dtype=np.float64) == np.asarray(query_category_code, dtype=np.float64)
    return {
        "days_since_creation": np.where(np.isnan(created), np.nan, np.maximum(age_days, 0.0)),
        "category_match": match.astype(np.float64),
    }
