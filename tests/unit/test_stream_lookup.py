"""Serving reads of streaming features: the current window's value, else the declared default,
counted by feature and reason; a failing store never raises."""

from __future__ import annotations

import socket

import numpy as np
import pyarrow as pa

from rankops.config_sections import RedisConfig
from rankops.features import registry, streaming
from rankops.features.online.embedded import EmbeddedStore
from rankops.features.online.redis import RedisStore, make_redis
from rankops.features.stream_lookup import StreamLookup

NOW = 1_764_000_123.0


def _stores(store):  # type: ignore[no-untyped-def]
    return {streaming.namespace(e, w): store for e, w, _ in streaming.groups()}


def test_current_window_values_else_counted_defaults(tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    store = EmbeddedStore(tmp_path / "online.sqlite")
    end = streaming.serving_window_end(NOW)
    counts = pa.table(
        {"entity": ["item"], "key": ["i-1"], "end_s": [end], "impressions": [40], "clicks": [6], "contacts": [2]}
    )
    for entity, window, feats in streaming.groups():
        ns = streaming.namespace(entity, window)
        streaming.ensure_live(store, ns, feats)
        for name, (keys, payloads) in streaming.packed_rows(counts, window, settings).items():
            store.write_live(name, streaming.version(), keys, payloads)
    seen: list[tuple[str, str, int]] = []
    lookup = StreamLookup(_stores(store), lambda f, r, n: seen.append((f, r, n)))

    got = lookup.fetch({"item": ["i-1", "i-2"], "seller": ["s-1", "s-2"]}, NOW)
    k = settings.features.ctr_prior_strength
    assert got.columns["item_clicks_1h"].tolist() == [6.0, registry.feature("item_clicks_1h").default]
    assert got.columns["item_ctr_1h"][0] == (6 + 0.1 * k) / (40 + k)
    assert got.columns["item_ctr_1h"][1] == registry.feature("item_ctr_1h").default
    assert got.defaulted[("item_clicks_1h", "missing_or_stale")] == 1
    assert got.defaulted[("seller_contacts_1h", "missing_or_stale")] == 2

    stale = lookup.fetch({"item": ["i-1"]}, NOW + registry.STREAM_SLIDE.total_seconds())  # the job stalled
    assert (
        stale.columns["item_clicks_1h"].tolist() == [0.0]
        and stale.defaulted[("item_clicks_1h", "missing_or_stale")] == 1
    )
    assert ("item_ctr_1h", "missing_or_stale", 1) in seen


def test_a_dead_store_gives_counted_defaults_not_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    cfg = RedisConfig(url=f"redis://127.0.0.1:{port}/0", socket_timeout_ms=50, connect_timeout_ms=50)
    lookup = StreamLookup(_stores(RedisStore(make_redis(cfg), cfg)))
    got = lookup.fetch({"item": ["i-1"], "seller": ["s-1"]}, NOW)
    assert got.defaulted[("item_ctr_1h", "store_error")] == 1
    assert np.isclose(got.columns["item_ctr_1h"][0], registry.feature("item_ctr_1h").default)
