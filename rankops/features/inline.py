"""Joined entities' values carried inside the root entity's packed value (one read per request).

An item's stored value holds its own features and, after them, for each joined entity
(seller, category) a found flag (1.0 when that entity had a row) and that entity's
features, copied at materialization from the same run's values; the joined keys follow
as before (``fetch_items(..., join_keys=True)`` decodes them for the streaming reads keyed
by seller). The serving lookup then
reads every entity of 100 candidates with one ``MGET`` of the items. The layout is
recorded with the version as the item's column list (:func:`layout`): the item's own
names, then ``<entity>#found`` and ``<entity>.<feature>`` per joined entity, so a
version written before (own names only) is still read, with a second read of the joined
entities. Staleness rule: a joined entity's change reaches serving when the items are
rewritten, which ``materialize`` always does in the same run (docs/features.md).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.features import registry

FOUND = "#found"


def layout(entity: str) -> list[str]:
    """Column list of ``entity``'s value with its joined entities inlined (== its own names without joins)."""
    names = list(registry.stored_names(entity))
    for joined in registry.joined_entities(entity):
        names.append(f"{joined}{FOUND}")
        names.extend(f"{joined}.{name}" for name in registry.stored_names(joined))
    return names


def defaults(entity: str) -> np.ndarray:
    """Defaults of :func:`layout`'s columns (a missing item: every joined entity not found, registry defaults)."""
    values = [f.default for f in registry.stored_features(entity)]
    for joined in registry.joined_entities(entity):
        values.append(0.0)
        values.extend(f.default for f in registry.stored_features(joined))
    return np.array(values, dtype=np.float64)


def widen(
    entity: str, own: np.ndarray, join_keys: list[pa.Array], joined: Mapping[str, tuple[pa.Array, np.ndarray]]
) -> np.ndarray:
    """``entity``'s own ``(n, w)`` values -> the :func:`layout` matrix: per joined entity its found
    flag and the values of the row whose key the entity's join column names (``joined``: that
    entity's keys and values, as materialized), registry defaults where there is none. Copies the
    float64 values, so they are bit for bit the joined entity's own."""
    own = np.asarray(own, dtype=np.float64)
    n = len(own)
    names = registry.joined_entities(entity)
    out = np.empty((n, own.shape[1] + sum(1 + joined[name][1].shape[1] for name in names)), dtype=np.float64)
    out[:, : own.shape[1]] = own  # written in place: no per-entity blocks stacked afterwards
    at = own.shape[1]
    for name, keys in zip(names, join_keys, strict=True):
        their_keys, their_values = joined[name]
        position = pc.fill_null(pc.index_in(keys, value_set=their_keys), -1).to_numpy(zero_copy_only=False)
        hit = position >= 0
        width = their_values.shape[1]
        out[:, at] = hit
        block = out[:, at + 1 : at + 1 + width]
        if hit.all():
            block[:] = their_values[position]
        else:
            block[:] = [f.default for f in registry.stored_features(name)]
            block[hit] = their_values[position[hit]]
        at += 1 + width
    return out


class Split:
    """Decodes :func:`layout` matrices of one entity (positions worked out once: the serving hot path)."""

    def __init__(self, entity: str) -> None:
        names = layout(entity)
        own = registry.stored_names(entity)
        self.columns = [(n, i) for i, n in enumerate(own)]
        self.columns += [(n.split(".", 1)[1], i) for i, n in enumerate(names) if i >= len(own) and "." in n]
        self.flags = [i for i, n in enumerate(names) if n.endswith(FOUND)]

    def __call__(self, matrix: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """A decoded matrix -> every column by feature name (own and joined) and, per row, whether
        every joined entity was found."""
        columns = {name: matrix[:, i] for name, i in self.columns}
        return columns, (matrix[:, self.flags] == 1.0).all(axis=1)


@functools.cache
def _split_of(entity: str) -> Split:
    return Split(entity)


def split(entity: str, matrix: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:class:`Split` of ``entity`` (built once per entity) applied to ``matrix``."""
    return _split_of(entity)(matrix)
