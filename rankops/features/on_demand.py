"""On-demand features: computed from stored features and the request, at request time.

Each on-demand declaration in the registry carries its inputs and its function
(:mod:`rankops.features.transforms`); this module applies them. One vectorised call
serves the training-set builder (one call per batch of joined rows) and the inference
server (one call per request), so the two can never disagree.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from rankops.features import registry
from rankops.features.transforms import OnDemandRequest

# The registry is a module-level tuple, fixed at import: resolved once here, not per request.
_ON_DEMAND = tuple(registry.on_demand_features())
_INPUT_NAMES = tuple(dict.fromkeys(n for f in _ON_DEMAND for n in f.inputs))


def input_names() -> list[str]:
    """Stored columns the on-demand features read (declared as their ``inputs``)."""
    return list(_INPUT_NAMES)


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
    request = OnDemandRequest(request_ts_s, query_category_code)
    columns = {n: np.asarray(stored[n], dtype=np.float64) for n in _INPUT_NAMES}
    out: dict[str, np.ndarray] = {}
    for f in _ON_DEMAND:
        if f.function is None:
            raise ValueError(f"on-demand feature {f.name!r} declares no function")
        out[f.name] = f.function(request, *(columns[n] for n in f.inputs))
    return out
