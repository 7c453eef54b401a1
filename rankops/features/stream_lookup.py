"""Serving reads of the streaming features (:mod:`rankops.features.streaming`).

A request wants each candidate's value of the window ending at the next slide boundary after
now (``<id>@<end>``): one batched read per store for every streaming namespace. A value that is
missing, or whose window is not the current one because the job stalled (then the current key
does not exist), falls back to the declared default and is counted by feature and reason; a
store that fails or is too slow gives defaults for all, counted too. It never raises: streaming
features must never cost a request its answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rankops.errors import StoreError
from rankops.features import registry
from rankops.features.online.packing import unpack_rows
from rankops.features.streaming import groups, namespace, serving_window_end, store_key, version

if TYPE_CHECKING:
    from rankops.features.online.base import OnlineStore

Count = Callable[[str, str, int], None]  # (feature, reason, n): e.g. a Prometheus counter's inc


@dataclass
class StreamValues:
    columns: dict[str, np.ndarray]
    defaulted: dict[tuple[str, str], int] = field(default_factory=dict)  # (feature, reason) -> candidates


class StreamLookup:
    """Built once per server; ``fetch`` is the per-request path."""

    def __init__(self, stores: Mapping[str, OnlineStore], count: Count | None = None) -> None:
        self.stores = stores  # namespace -> store (namespaces routed as their entity)
        self.count = count
        self.groups = [(e, namespace(e, w), fs) for e, w, fs in groups()]

    def fetch(self, keys: Mapping[str, list[str]], now_s: float | None = None) -> StreamValues:
        """``keys``: per entity (item, seller) the candidates' ids, aligned; ``None``-free."""
        end = serving_window_end(time.time() if now_s is None else now_s)
        by_store: dict[int, dict[str, list[str]]] = {}
        for entity, ns, _ in self.groups:
            if entity in keys:
                by_store.setdefault(id(self.stores[ns]), {})[ns] = [store_key(k, end) for k in keys[entity]]
        payloads: dict[str, list[bytes | None]] = {}
        failed: set[str] = set()
        for requests in by_store.values():
            store = self.stores[next(iter(requests))]
            try:
                payloads.update(store.read_many(requests))
            except StoreError:
                failed.update(requests)
        out = StreamValues({})
        for entity, ns, feats in self.groups:
            if entity not in keys:
                continue
            n = len(keys[entity])
            defaults = np.array([f.default for f in feats], dtype=np.float64)
            rows = payloads.get(ns, [None] * n)
            matrix, found, _ = unpack_rows(rows, len(feats), defaults, version())
            reason = "store_error" if ns in failed else "missing_or_stale"
            for j, f in enumerate(feats):
                out.columns[f.name] = matrix[:, j]
                missing = int(n - found.sum())
                if missing:
                    out.defaulted[(f.name, reason)] = missing
                    if self.count is not None:
                        self.count(f.name, reason, missing)
        return out


def stream_names() -> list[str]:
    """Names of the streaming features, in declaration order (the columns ``fetch`` returns)."""
    return [f.name for f in registry.FEATURES if f.kind == "stream"]
