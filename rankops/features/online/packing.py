"""One value encoding shared by every online store.

An entity's stored features are packed into one value per entity key::

    8 bytes   version tag (first 8 bytes of sha256 of the store version)
    8*w bytes the features, little-endian float64, in the order recorded with the version
    rest      keys of joined entities (seller id, category), UTF-8, separated by 0x1f

One value per key means one round trip per batch read and no per-field parsing;
the tag lets a reader reject a value left over from an older version (stores that
reuse key slots across versions, see :mod:`rankops.features.online.redis`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

DTYPE = np.dtype("<f8")
WORD = np.dtype("<u8")  # a value read as 8-byte words (tag, then one per float)
TAG_BYTES = 8
SEPARATOR = "\x1f"


@functools.lru_cache(maxsize=64)
def version_tag(version: str) -> bytes:
    """Cached: every read of a request decodes against its version's tag."""
    return hashlib.sha256(version.encode()).digest()[:TAG_BYTES]


def pack_columns(
    version: str, values: np.ndarray, join_columns: Sequence[pa.Array | Sequence[str | None]] = ()
) -> list[bytes]:
    """``(n, w)`` float matrix (plus one column of ``n`` join keys per joined entity) -> ``n``
    packed values. Column-wise with NumPy and Arrow kernels (no per-row Python): the tag and the
    floats are laid out as one fixed-width byte matrix, the join keys appended with Arrow's
    element-wise join; this is what makes materialization fast (docs/features.md)."""
    if not join_columns:  # slices of one bytes object: 4x faster than Arrow's to_pylist here
        body = _fixed(version, values)
        width = body.shape[1]
        blob = body.tobytes()
        return [blob[i : i + width] for i in range(0, len(blob), width)]
    packed: list[bytes] = pack_arrow(version, values, join_columns).to_pylist()
    return packed


def _fixed(version: str, values: np.ndarray) -> np.ndarray:
    """The tag and the floats of every row as one ``(n, 8 + 8w)`` byte matrix."""
    matrix = np.ascontiguousarray(values, dtype=DTYPE)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-d matrix of feature values, got shape {matrix.shape}")
    n, width = matrix.shape[0], TAG_BYTES + matrix.shape[1] * DTYPE.itemsize
    body = np.empty((n, width), dtype=np.uint8)
    body[:, :TAG_BYTES] = np.frombuffer(version_tag(version), dtype=np.uint8)
    body[:, TAG_BYTES:] = matrix.view(np.uint8).reshape(n, width - TAG_BYTES)
    return body


def pack_arrow(
    version: str, values: np.ndarray, join_columns: Sequence[pa.Array | Sequence[str | None]] = ()
) -> pa.BinaryArray:
    """:func:`pack_columns` as one Arrow binary array (the same bytes per row), for writers that
    encode Arrow arrays directly (:meth:`rankops.features.online.redis.RedisStore.write_stream`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    body = _fixed(version, values)
    n, width = body.shape
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(body)]).cast(pa.binary())
    if not join_columns:
        return fixed
    keys = []
    for column in join_columns:
        array = column if isinstance(column, pa.Array | pa.ChunkedArray) else pa.array(column, pa.string())
        if len(array) != n:
            raise ValueError(f"{len(array)} rows of join keys for {n} rows of values")
        keys.append(pc.fill_null(array.cast(pa.string()), ""))
    joined = pc.binary_join_element_wise(*keys, SEPARATOR).cast(pa.binary())
    return pc.binary_join_element_wise(fixed, joined, b"")


def pack_rows(version: str, values: np.ndarray, joins: Sequence[Sequence[str | None]] | None = None) -> list[bytes]:
    """``(n, w)`` float matrix (plus ``n`` rows of join keys) -> ``n`` packed values."""
    if joins and len(joins) != len(values):
        raise ValueError(f"{len(joins)} rows of join keys for {len(values)} rows of values")
    columns = [list(c) for c in zip(*joins, strict=True)] if joins else []
    return pack_columns(version, values, columns)


def unpack_rows(
    payloads: Sequence[bytes | None], width: int, defaults: np.ndarray, version: str, n_joins: int = 0
) -> tuple[np.ndarray, np.ndarray, list[list[str | None]]]:
    """Packed values (``None`` = missing) -> ``(n, width)`` matrix with defaults filled,
    a found-mask, and per joined entity the list of keys (``None`` where unknown)."""
    tag = version_tag(version)
    end = TAG_BYTES + width * DTYPE.itemsize
    n = len(payloads)
    if n:
        fast = (
            _unpack_fixed(payloads, width, defaults, tag, end)
            if not n_joins
            else _unpack_keyed(payloads, width, tag, end, n_joins)
        )
        if fast is not None:
            return fast
    hit_list = [p is not None and p.startswith(tag) for p in payloads]
    found = np.array(hit_list, dtype=bool)
    out = np.empty((n, width), dtype=DTYPE)
    if all(hit_list):
        floats = b"".join([p[TAG_BYTES:end] for p in payloads])  # type: ignore[index]
        out[:] = np.frombuffer(floats, dtype=DTYPE).reshape(n, width)
    else:
        out[:] = defaults
        hits = [i for i, hit in enumerate(hit_list) if hit]
        if hits:
            chunks = [payloads[i][TAG_BYTES:end] for i in hits]  # type: ignore[index]
            out[hits] = np.frombuffer(b"".join(chunks), dtype=DTYPE).reshape(len(hits), width)
    joins: list[list[str | None]] = [[None] * n for _ in range(n_joins)]
    if n_joins:
        hits = [i for i, hit in enumerate(hit_list) if hit]
        # Every key of every row in one decode and one split (each row holds n_joins keys, joined
        # by the separator); rows written with fewer keys fall back to splitting row by row.
        flat = SEPARATOR.join([payloads[i][end:].decode() for i in hits]).split(SEPARATOR)  # type: ignore[index]
        if len(flat) == len(hits) * n_joins:
            for j in range(n_joins):
                column = joins[j]
                for i, key in zip(hits, flat[j::n_joins], strict=True):
                    column[i] = key or None
            return out, found, joins
        split = [payloads[i][end:].decode().split(SEPARATOR) for i in hits]  # type: ignore[index]
        for j in range(n_joins):
            column = joins[j]
            for i, parts in zip(hits, split, strict=True):
                column[i] = (parts[j] or None) if j < len(parts) else None
    return out, found, joins


def _unpack_fixed(
    payloads: Sequence[bytes | None], width: int, defaults: np.ndarray, tag: bytes, end: int
) -> tuple[np.ndarray, np.ndarray, list[list[str | None]]] | None:
    """The serving hot path without join keys: values of one length (tag + floats), or every value
    present with keys after the floats (cut off), decoded as one byte matrix, tags compared
    column-wise. ``None`` otherwise: the general path decodes it."""
    n = len(payloads)
    values: Sequence[bytes] = payloads  # type: ignore[assignment]
    try:
        lengths = list(map(len, values))
    except TypeError:  # some value is missing (None): an empty one never matches the tag
        values = [p or b"" for p in payloads]
        lengths = list(map(len, values))
    if lengths.count(end) != n:
        if values is payloads and min(lengths) >= end:  # join keys follow: not asked for, cut off
            values = [p[:end] for p in values]
            lengths = [end] * n
        elif lengths.count(end) + lengths.count(0) != n:
            return None
        else:
            blank = bytes(end)
            values = [p or blank for p in values]
    # Each value is 1 + width 8-byte words: the tag compares as one integer, the floats copy bit for bit.
    words = np.frombuffer(b"".join(values), dtype=WORD).reshape(n, 1 + width)
    found = words[:, 0] == np.frombuffer(tag, dtype=WORD)[0]
    if lengths.count(end) != n:  # missing (or empty) values
        found &= np.array(lengths) == end
    out = words[:, 1:].copy().view(DTYPE)
    if np.count_nonzero(found) != n:  # count_nonzero is C all the way; ndarray.all() goes through Python
        out[~found] = defaults
    return out, found, []


def _unpack_keyed(
    payloads: Sequence[bytes | None], width: int, tag: bytes, end: int, n_joins: int
) -> tuple[np.ndarray, np.ndarray, list[list[str | None]]] | None:
    """The serving hot path with join keys: every value present and of this version (any other
    case returns ``None`` for the general path). Tag and floats of every row are joined
    as one byte matrix (tags compared column-wise), the keys decoded and split once for all rows."""
    try:
        lengths = list(map(len, payloads))  # type: ignore[arg-type]
    except TypeError:  # a missing value
        return None
    if min(lengths) < end:
        return None
    values: Sequence[bytes] = payloads  # type: ignore[assignment]
    raw = np.frombuffer(b"".join([p[:end] for p in values]), dtype=np.uint8).reshape(len(values), end)
    if not (raw[:, :TAG_BYTES] == np.frombuffer(tag, dtype=np.uint8)).all():
        return None
    flat = SEPARATOR.encode().join([p[end:] for p in values]).decode().split(SEPARATOR)
    if len(flat) != len(values) * n_joins:
        return None
    if "" in flat:  # an unknown key was stored empty: None
        joins: list[list[str | None]] = [[k or None for k in flat[j::n_joins]] for j in range(n_joins)]
    else:
        joins = [flat[j::n_joins] for j in range(n_joins)]  # type: ignore[misc]
    out = raw[:, TAG_BYTES:].copy().view(DTYPE).reshape(len(values), width)
    return out, np.ones(len(values), dtype=bool), joins
