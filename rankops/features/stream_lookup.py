"""Serving reads of the streaming features (:mod:`rankops.features.streaming`).

A request wants each candidate's value of the window ending at the next slide boundary after
now (``<id>@<end>``): one batched read per store for every streaming namespace. A value that is
missing, or whose window is not the current one because the job stalled (then the current key
does not exist), falls back to the declared default and is counted by feature and reason; a
store that fails or is too slow gives defaults for all, counted too, and so does a store read the
request's remaining latency budget cannot cover (skipped, reason ``budget``) or a namespace with
no store (``no_store``). It never raises: streaming features must never cost a request its answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
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

    def fetch(
        self, keys: Mapping[str, Sequence[str | None]], now_s: float | None = None, deadline: float | None = None
    ) -> StreamValues:
        """``keys``: per entity (item, seller) the candidates' ids, aligned (``None``: unknown, its
        default). ``deadline`` (``time.perf_counter()`` seconds): no read starts that it cannot cover."""
        end = serving_window_end(time.time() if now_s is None else now_s)
        by_store: dict[int, dict[str, list[str]]] = {}
        failed: dict[str, str] = {}  # namespace -> reason its values are all defaults
        for entity, ns, _ in self.groups:
            if entity not in keys:
                continue
            if ns not in self.stores:
                failed[ns] = "no_store"
                continue
            wanted = [store_key(k if k is not None else "", end) for k in keys[entity]]
            by_store.setdefault(id(self.stores[ns]), {})[ns] = wanted
        payloads: dict[str, list[bytes | None]] = {}
        for requests in by_store.values():
            store = self.stores[next(iter(requests))]
            if deadline is not None and deadline - time.perf_counter() < store.worst_call_s:
                failed.update(dict.fromkeys(requests, "budget"))
                continue
            try:
                payloads.update(store.read_many(requests))
            except StoreError:
                failed.update(dict.fromkeys(requests, "store_error"))
        out = StreamValues({})
        for entity, ns, feats in self.groups:
            if entity not in keys:
                continue
            n = len(keys[entity])
            defaults = np.array([f.default for f in feats], dtype=np.float64)
            rows = payloads.get(ns, [None] * n)
            try:
                matrix, found, _ = unpack_rows(rows, len(feats), defaults, version())
            except (ValueError, UnicodeDecodeError):  # a value this server cannot decode: defaults
                matrix, found = np.tile(defaults, (n, 1)), np.zeros(n, dtype=bool)
                failed[ns] = "undecodable"
            reason = failed.get(ns, "missing_or_stale")
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
