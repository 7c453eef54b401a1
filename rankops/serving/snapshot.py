"""The item snapshot: what the fallback levels need to keep ranking while a store is down.

The fallback model and the rule baseline read the same online store as the champion, so
without a copy an outage of that store leaves only the candidates' input order. The
snapshot is that copy, held in the server's memory: per item, the stored features the
fallback levels read (the fallback model's inputs and the rule's, on-demand features
expanded to their stored inputs; the item's own and its seller's and category's, as
joined for that item), as the store last returned them.

It is filled from the server's own successful reads (:meth:`ItemSnapshot.observe`), so
it holds exactly the items that traffic asks for, in the store's live version: when a
materialization publishes a new version, each item's row is replaced the next time the
item is read. That needs no scan of the store (DynamoDB and Redis have no cheap one) and no
extra store. At start a background thread seeds it from the offline store
(:mod:`rankops.serving.snapshot_warm`), so a server started during an outage is not empty.
It is bounded: at most ``serving.snapshot_items`` rows;
beyond that the oldest-inserted row gives its place to a new item (FIFO). Memory per
million items is stated in docs/serving.md.

During an outage (:meth:`ItemSnapshot.fill`) the features a failed store held are taken
from the snapshot for the candidates it holds (registry defaults for the others, as for
items missing from the store); it is used only if it covers at least
``MIN_COVERAGE`` of the candidates, so a cold snapshot never passes defaults off as a
ranking. Only the fallback levels read it: the champion's fast-moving inputs are not in it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from rankops.features import registry
from rankops.training.baseline import RULE_INPUTS

MIN_COVERAGE = 0.5  # share of a request's candidates the snapshot must hold to be used


def snapshot_columns(model_inputs: Iterable[str]) -> list[str]:
    """The stored features behind ``model_inputs`` (on-demand ones expanded to their inputs),
    in registry order, for the item and the entities it joins."""
    wanted: set[str] = set()
    for name in model_inputs:
        feature = registry.feature(name)
        wanted.update(feature.inputs if feature.kind == "on_demand" else (name,))
    entities = ["item", *registry.joined_entities("item")]
    return [n for e in entities for n in registry.stored_names(e) if n in wanted]


def for_fallback_levels(capacity: int, fallback_inputs: Iterable[str]) -> ItemSnapshot | None:
    """The server's snapshot: the fallback model's and the rule's stored inputs (None when
    ``serving.snapshot_items`` is 0)."""
    return ItemSnapshot(snapshot_columns([*fallback_inputs, *RULE_INPUTS]), capacity) if capacity else None


class ItemSnapshot:
    """A bounded, thread-safe table item id -> the snapshot's columns (float64)."""

    def __init__(self, columns: Sequence[str], capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"snapshot capacity must be at least 1 item, not {capacity}")
        self.columns = list(columns)
        self.capacity = capacity
        self._defaults = np.array([registry.feature(n).default for n in self.columns])
        # one array per column (writes are one fancy assignment each, no stacking); np.empty: pages
        # are only backed by memory once a row is written
        self._values = [np.empty(capacity, dtype=np.float64) for _ in self.columns]
        self._keys: list[str | None] = [None] * capacity
        self._index: dict[str, int] = {}
        self._next = 0  # the next slot to (re)use once full: FIFO replacement
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def observe(self, item_ids: Sequence[str], columns: Mapping[str, np.ndarray], found: np.ndarray) -> None:
        """Record the rows the store returned for found items (missing items are not recorded).
        On the request path: one dict lookup per candidate and one assignment per column."""
        if not self.columns:
            return
        every = bool(found.all())
        with self._lock:
            index = self._index
            slots: list[int | None] = list(map(index.get, item_ids))  # None: not held yet
            if None in slots:
                for at, slot in enumerate(slots):
                    if slot is None:  # looked up again: a candidate listed twice gets one slot
                        held = index.get(item_ids[at])
                        slots[at] = held if held is not None else self._claim(item_ids[at]) if found[at] else -1
            at_slots = np.array(slots, dtype=np.int64)
            if every:
                for name, values in zip(self.columns, self._values, strict=True):
                    values[at_slots] = columns[name]
            else:
                keep = np.asarray(found, dtype=bool)
                for name, values in zip(self.columns, self._values, strict=True):
                    values[at_slots[keep]] = np.asarray(columns[name])[keep]

    def seed(self, item_ids: Sequence[str], columns: Mapping[str, np.ndarray]) -> int:
        """Rows for items the snapshot does not hold yet, while it has free slots (a seed never
        replaces a row traffic put there and never evicts); returns how many it added."""
        with self._lock:
            free = self.capacity - len(self._index)
            fresh = [at for at, k in enumerate(item_ids) if k not in self._index][: max(free, 0)]
            if not fresh:
                return 0
            slots = np.array([self._claim(item_ids[at]) for at in fresh], dtype=np.int64)
            for name, values in zip(self.columns, self._values, strict=True):
                values[slots] = np.asarray(columns[name])[fresh]
        return len(fresh)

    def _claim(self, item_id: str) -> int:
        slot = self._next
        self._next = (slot + 1) % self.capacity
        old = self._keys[slot]
        if old is not None:
            del self._index[old]
        self._keys[slot] = item_id
        self._index[item_id] = slot
        return slot

    def fill(self, item_ids: Sequence[str], names: Iterable[str]) -> tuple[dict[str, np.ndarray], int] | None:
        """Columns for ``names`` (those the snapshot holds) from the snapshot, defaults where it
        holds no row, and how many candidates it held; ``None`` below ``MIN_COVERAGE``."""
        wanted = [n for n in names if n in self.columns]
        if not wanted or not item_ids:
            return None
        with self._lock:
            slots = np.array([self._index.get(k, -1) for k in item_ids], dtype=np.int64)
            held = slots >= 0
            covered = int(held.sum())
            if covered < MIN_COVERAGE * len(item_ids):
                return None
            at_slots = slots[held]
            out: dict[str, np.ndarray] = {}
            for name in wanted:
                j = self.columns.index(name)
                column = np.full(len(item_ids), self._defaults[j])
                column[held] = self._values[j][at_slots]
                out[name] = column
        return out, covered

    def nbytes(self) -> int:
        """Memory the rows written so far hold (values, keys, index), approximately."""
        import sys

        keys = sum(sys.getsizeof(k) for k in self._index)
        return len(self._index) * len(self.columns) * 8 + keys + sys.getsizeof(self._index) + 8 * self.capacity
