"""On-demand features: computed from stored features and the request, at request time.

One vectorised implementation serves the training-set builder (one call per
batch of joined rows) and the inference server (one call per request), so the
two can never disagree.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from rankops.features import registry

SECONDS_PER_DAY = 86_400.0


def input_names() -> list[str]:
    """Stored columns the on-demand features read (declared as their ``inputs``)."""
    return list(dict.fromkeys(n for f in registry.on_demand_features() for n in f.inputs))


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
    price = np.asarray(stored["price"], dtype=np.float64)
    mean_price = np.asarray(stored["category_mean_price"], dtype=np.float64)
    log_mean = np.asarray(stored["category_log_price_mean"], dtype=np.float64)
    log_std = np.asarray(stored["category_log_price_std"], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.where((mean_price > 0) & (price > 0), price / mean_price - 1.0, np.nan)
        z = np.where(
            (price > 0) & (log_std > 0), (np.log(np.where(price > 0, price, 1.0)) - log_mean) / log_std, np.nan
        )
    return {
        "days_since_creation": np.where(np.isnan(created), np.nan, np.maximum(age_days, 0.0)),
        "category_match": match.astype(np.float64),
        "price_deviation_from_category_mean": deviation,
        "price_z_in_category": z,
    }
