"""Seed the item snapshot from the offline store when the server starts.

The snapshot (:mod:`rankops.serving.snapshot`) fills from the server's own successful reads, so a
server that starts while its online store is down holds nothing and its fallback levels rank with
defaults. The offline store holds the same values the online store was materialized from (the
latest published row per entity: :func:`rankops.features.offline.latest.latest_values`), so at
start a background thread copies them in: items with their seller's and category's values joined
exactly as materialization inlines them (:func:`rankops.features.materialize.inlined`).

A seed never replaces a row traffic put there (that one is the live version's) and never evicts:
it stops when the snapshot is full. It never delays start-up or a request; when the lake cannot
be read it logs why and the snapshot fills from traffic as before.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from rankops.features import inline, registry
from rankops.serving.snapshot import ItemSnapshot

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake

log = logging.getLogger(__name__)
CHUNK = 20_000  # rows per seed call: the snapshot's lock is held for one chunk at a time


def plain_name(layout_name: str) -> str:
    """``seller.seller_ctr_30d`` (an inlined column) -> ``seller_ctr_30d`` (the snapshot's name)."""
    return layout_name.split(".", 1)[1] if "." in layout_name else layout_name


def seed_from_lake(snapshot: ItemSnapshot, lake: Lake, settings: Settings) -> int:
    """Copy the offline store's latest item rows (joined values inlined) into ``snapshot``; returns
    how many items it seeded."""
    from rankops.features.materialize import inlined, rows_of
    from rankops.features.offline.latest import latest_values

    entities = ["item", *registry.joined_entities("item")]
    read = {e: rows_of(latest_values(lake, settings, e), e) for e in entities}
    rows, names = inlined("item", read["item"], {e: read[e] for e in entities[1:]})
    at = {plain_name(n): i for i, n in enumerate(names) if not n.endswith(inline.FOUND)}
    missing = [c for c in snapshot.columns if c not in at]
    if missing:
        raise ValueError(f"the offline store's item rows lack the snapshot's columns {missing}")
    seeded = 0
    for lo in range(0, len(rows.keys), CHUNK):
        chunk = rows.values[lo : lo + CHUNK]
        columns = {c: np.ascontiguousarray(chunk[:, at[c]]) for c in snapshot.columns}
        added = snapshot.seed(rows.keys[lo : lo + CHUNK], columns)
        seeded += added
        if added < len(chunk):  # full
            break
    return seeded


def start_seeding(snapshot: ItemSnapshot | None, lake: Lake, settings: Settings) -> threading.Thread | None:
    """Seed ``snapshot`` on a daemon thread (None when there is no snapshot)."""
    if snapshot is None:
        return None

    def run() -> None:
        try:
            log.info("item snapshot: seeded %d items from the offline store", seed_from_lake(snapshot, lake, settings))
        except Exception as err:
            log.warning("item snapshot: not seeded from the offline store (%s: %s)", type(err).__name__, err)

    thread = threading.Thread(target=run, name="snapshot-seed", daemon=True)
    thread.start()
    return thread
