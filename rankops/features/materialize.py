"""Materialization: the latest offline value of every entity, into the online stores.

Each run writes a new store version and activates it only after every row is
written, so readers switch from one complete version to the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from rankops.features import registry
from rankops.features.offline import feature_set_version, latest_values
from rankops.features.online.base import OnlineStore, open_store
from rankops.lake import Lake, new_run_id

if TYPE_CHECKING:
    from rankops.config import Settings

BATCH_ROWS = 20_000


def materialize(
    lake: Lake,
    settings: Settings,
    as_of: datetime | None = None,
    store_factory: Callable[[Settings, str], OnlineStore] = open_store,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, object]]:
    """Publish the latest values of every stored entity; returns rows and version per entity."""
    report: dict[str, dict[str, object]] = {}
    for entity in registry.stored_entities():
        started = time.perf_counter()
        table = latest_values(lake, settings, entity, as_of)
        names = [f.name for f in registry.stored_features(entity)]
        keys = table[registry.ENTITIES[entity].key].to_pylist()
        values = np.column_stack([table[n].to_numpy(zero_copy_only=False).astype(np.float64) for n in names])
        version = f"{feature_set_version(settings)}-{new_run_id()}"
        store = store_factory(settings, entity)
        try:
            for lo in range(0, len(keys), BATCH_ROWS):
                store.write_batch(entity, version, keys[lo : lo + BATCH_ROWS], values[lo : lo + BATCH_ROWS])
            store.activate(entity, version, names)
        finally:
            store.close()
        seconds = time.perf_counter() - started
        report[entity] = {"rows": len(keys), "version": version, "store": store.kind, "seconds": round(seconds, 3)}
        if progress:
            progress(f"{entity}: {len(keys):,} rows -> {store.kind} store, version {version}")
    return report
