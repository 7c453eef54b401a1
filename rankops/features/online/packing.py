"""One value encoding shared by every online store.

An entity's stored features are packed as one little-endian float64 vector in
registry order (the order is recorded with the version). One key per entity
means one round trip per batch and no per-field parsing on the read path.
"""

from __future__ import annotations

import numpy as np

DTYPE = np.dtype("<f8")


def pack_rows(values: np.ndarray) -> list[bytes]:
    """``(n, f)`` float matrix -> ``n`` packed values."""
    matrix = np.ascontiguousarray(values, dtype=DTYPE)
    width = matrix.shape[1] * DTYPE.itemsize
    flat = matrix.tobytes()
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def unpack_rows(payloads: list[bytes | None], width: int, defaults: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed values (``None`` = missing) -> ``(n, width)`` matrix with defaults filled, and a found-mask."""
    out = np.empty((len(payloads), width), dtype=DTYPE)
    found = np.zeros(len(payloads), dtype=bool)
    for i, payload in enumerate(payloads):
        if payload is not None and len(payload) == width * DTYPE.itemsize:
            out[i] = np.frombuffer(payload, dtype=DTYPE)
            found[i] = True
        else:
            out[i] = defaults
    return out, found
