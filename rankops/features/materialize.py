"""Materialization: the latest published offline value of every entity, into the
online store its entity is routed to.

Each run writes a new store version per entity and activates it only after every
row is written and checked, so readers switch from one complete version to the
next; a run that fails (store error, bad values) activates nothing for that entity
and the previous version stays live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from rankops.errors import ValidationFailed
from rankops.features import inline, registry
from rankops.features.offline import feature_set_version, latest_values
from rankops.features.online.base import OnlineStore
from rankops.features.online.factory import open_stores
from rankops.features.online.packing import pack_arrow, pack_columns
from rankops.lake import Lake, new_run_id

if TYPE_CHECKING:
    from rankops.config import Settings


@dataclass(frozen=True)
class Rows:
    """One entity's values ready to write: keys, the float matrix, one column of keys per joined entity."""

    keys: list[str]
    values: np.ndarray
    joins: list[pa.Array]
    key_array: pa.Array | None = None  # the keys as Arrow (to join other entities' rows to them)


def _array(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def rows_of(table: pa.Table, entity: str) -> Rows:
    names = registry.stored_names(entity)
    key_array = _array(table[registry.ENTITIES[entity].key])
    keys = key_array.to_pylist()
    if names:
        values = np.column_stack([table[n].to_numpy(zero_copy_only=False).astype(np.float64) for n in names])
    else:
        values = np.zeros((len(keys), 0))
    return Rows(keys, values, [_array(table[c]) for c in registry.join_keys(entity)], key_array)


def inlined(entity: str, rows: Rows, joined: Mapping[str, Rows]) -> tuple[Rows, list[str]]:
    """``entity``'s rows carrying its joined entities' values (:mod:`rankops.features.inline`) and
    the column list to activate, when every joined entity is materialized in this run; otherwise
    the rows unchanged with its own column names."""
    names = registry.stored_names(entity)
    wanted = registry.joined_entities(entity)
    if not wanted or any(j not in joined for j in wanted):
        return rows, names
    sources = {j: (_array(joined[j].key_array), joined[j].values) for j in wanted}
    wide = inline.widen(entity, rows.values, rows.joins, sources)
    return Rows(rows.keys, wide, rows.joins, rows.key_array), inline.layout(entity)


def check_rows(entity: str, rows: Rows) -> None:
    """Last gate before a store sees the values: declared ranges, no unexpected NaN."""
    problems = []
    for i, f in enumerate(registry.stored_features(entity)):
        column = rows.values[:, i]
        nan = np.isnan(column)
        if nan.any() and not np.isnan(f.default):
            problems.append(f"{f.name}: {int(nan.sum())} NaN values")
        lo, hi = f.valid_range
        outside = int(((column < lo) | (column > hi)).sum())
        if outside:
            problems.append(f"{f.name}: {outside} values outside [{lo}, {hi}]")
    if problems:
        raise ValidationFailed(f"not materializing {entity!r}: " + "; ".join(problems))


def write_version(
    store: OnlineStore, entity: str, version: str, rows: Rows, batch_rows: int, columns: list[str] | None = None
) -> None:
    """Write every row under ``version``, then activate it; on any failure the version
    is abandoned and the previous one stays live. ``columns``: the value's column list
    (default: the entity's stored names; see :func:`inlined`). Rows are packed ``batch_rows`` at a
    time as they are written; a store class with ``write_stream`` (Redis) takes them as one stream,
    so packing a batch overlaps with the store writing the previous one (a wrapper that only
    overrides ``write_batch`` gets ``write_batch`` calls: the method is looked up on the class)."""
    stream = getattr(type(store), "write_stream", None)
    try:
        if stream is not None:
            keys = rows.key_array if rows.key_array is not None else rows.keys
            chunks = (
                (keys[lo : lo + batch_rows], pack_arrow(version, *_batch(rows, lo, batch_rows)))
                for lo in range(0, len(rows.keys), batch_rows)
            )
            stream(store, entity, version, chunks)
        else:
            for lo in range(0, len(rows.keys), batch_rows):
                payloads = pack_columns(version, *_batch(rows, lo, batch_rows))
                store.write_batch(entity, version, rows.keys[lo : lo + batch_rows], payloads)
        names = columns if columns is not None else registry.stored_names(entity)
        store.activate(entity, version, names, registry.joined_entities(entity) if rows.joins else [])
    except BaseException:
        try:
            store.abort(entity, version)
        finally:
            raise


def _batch(rows: Rows, lo: int, size: int) -> tuple[np.ndarray, list[pa.Array]]:
    """Rows ``lo`` to ``lo + size``: their values and join-key columns (views, no copies)."""
    return rows.values[lo : lo + size], [column[lo : lo + size] for column in rows.joins]


def materialize(
    lake: Lake,
    settings: Settings,
    before: datetime | None = None,
    stores: Mapping[str, OnlineStore] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, object]]:
    """Publish the latest values of every stored entity; returns rows, version, store
    and seconds per entity. ``stores`` (entity -> store) defaults to the configured routing."""
    run_id = new_run_id()
    version = f"{feature_set_version(settings)}-{run_id}"
    entities = registry.stored_entities()
    owned = stores is None
    targets = dict(stores) if stores is not None else open_stores(settings, entities, for_writes=True)
    report: dict[str, dict[str, object]] = {}
    try:
        # Every entity is read and checked before anything is written: an item's value carries its
        # seller's and category's values of this same run, so a bad row anywhere writes nothing.
        read: dict[str, Rows] = {}
        seconds: dict[str, float] = {}
        for entity in entities:
            started = time.perf_counter()
            read[entity] = rows_of(latest_values(lake, settings, entity, before, by_key=False), entity)
            check_rows(entity, read[entity])
            seconds[entity] = time.perf_counter() - started
        for entity in entities:
            started = time.perf_counter()
            rows, columns = inlined(entity, read[entity], read)
            store = targets[entity]
            write_version(store, entity, version, rows, settings.features.materialize_batch_rows, columns)
            seconds[entity] += time.perf_counter() - started
            report[entity] = {
                "rows": len(rows.keys),
                "version": version,
                "store": store.kind,
                "seconds": seconds[entity],
                "inlined": columns != registry.stored_names(entity),
            }
            if progress:
                progress(f"{entity}: {len(rows.keys):,} rows -> {store.kind} store, version {version}")
    finally:
        if owned:
            for store in {id(s): s for s in targets.values()}.values():
                store.close()
    return report
