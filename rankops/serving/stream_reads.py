"""The server's reads of the streaming features (:mod:`rankops.features.stream_lookup`).

Kept apart from the ranking core so the hot path gains one call: after the batch features,
:func:`stream_columns` adds every streaming feature a loaded model reads, from the current
window in the online store. Streaming namespaces live on the store of their entity (the
routing of ``online_store.routing``), so the lookup reuses the server's guarded store clients
(one circuit breaker and one latency guard per store). A request pays the extra round trip only
while some loaded model reads a streaming feature. Missing, stale, failed or over-budget reads
give the declared defaults, counted in ``rankops_stream_feature_defaults_total``; nothing here
raises into a request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from rankops.features import registry
from rankops.features.stream_lookup import StreamLookup, stream_names
from rankops.features.streaming import groups, namespace

if TYPE_CHECKING:
    from rankops.features.online.base import OnlineStore
    from rankops.monitoring.metrics import ServingMetrics

log = logging.getLogger("rankops.serving")
ROOT = "item"


def build_stream_lookup(entity_stores: Mapping[str, OnlineStore], metrics: ServingMetrics) -> StreamLookup:
    """A lookup over the serving stores: each streaming namespace on its entity's store (entities
    without a store here give counted defaults, reason ``no_store``)."""
    stores = {namespace(e, w): entity_stores[e] for e, w, _ in groups() if e in entity_stores}

    def count(feature: str, reason: str, n: int) -> None:
        metrics.stream_defaults.labels(feature, reason).inc(n)

    return StreamLookup(stores, count)


def wanted(model_features: Sequence[Sequence[str]]) -> frozenset[str]:
    """The streaming features any of these models reads (none: the read is skipped)."""
    names = set(stream_names())
    return frozenset(n for features in model_features for n in features if n in names)


def stream_columns(
    lookup: StreamLookup,
    item_ids: list[str],
    joins: Mapping[str, list[str | None]],
    now_s: float,
    deadline: float | None,
) -> dict[str, np.ndarray]:
    """Every streaming feature's column for these candidates: stored current-window values, else
    defaults (counted by the lookup). ``joins``: the candidates' keys of the joined entities, as
    the batch lookup read them from the items. Never raises."""
    keys: dict[str, Sequence[str | None]] = {ROOT: item_ids}
    for entity in {e for e, _, _ in groups() if e != ROOT}:
        keys[entity] = joins.get(entity) or [None] * len(item_ids)
    try:
        return lookup.fetch(keys, now_s, deadline).columns
    except Exception as err:  # the lookup does not raise by design; if it ever does, defaults
        log.warning("streaming features unavailable, serving defaults: %s", err)
        out: dict[str, np.ndarray] = {}
        for name in stream_names():
            out[name] = np.full(len(item_ids), registry.feature(name).default)
            if lookup.count is not None:
                lookup.count(name, "error", len(item_ids))
        return out
