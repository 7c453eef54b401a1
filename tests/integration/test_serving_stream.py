"""The real server reads the streaming features: a model that reads them gets the current
window's values from the online store (a private redis-server, written by the streaming job's
own packing and ``write_live``); a missing or stale value is the declared default, counted; a
dead streaming store never costs the request its answer."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from benchmarks.serving_store import PrivateRedis, redis_store
from rankops.features import inline, registry, streaming
from rankops.features.online.packing import pack_rows
from rankops.features.online.redis import RedisConfig, RedisStore, make_redis
from rankops.serving.model import LoadedModel
from rankops.serving.routing import Routing
from rankops.serving.schema import parse_request
from rankops.serving.server import build_server
from rankops.serving.stream_reads import build_stream_lookup
from tests import serving_helpers as h

NAMES = ["item_ctr_1h", "seller_contacts_1h", "ctr_7d"]  # a model reading two streaming features
COUNT = 40


def stream_ranker() -> LoadedModel:
    """A LightGBM ranker whose relevance is driven by the last hour's smoothed CTR."""
    import lightgbm as lgb

    rng = np.random.default_rng(5)
    rows = 2000
    frame = np.column_stack([rng.uniform(0, 0.6, rows), rng.integers(0, 20, rows), rng.uniform(0, 0.1, rows)])
    label = np.clip(np.round(8 * frame[:, 0] + rng.normal(0, 0.2, rows)), 0, 4).astype(int)
    params = {"objective": "lambdarank", "num_leaves": 7, "min_data_in_leaf": 10, "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(frame, label, group=[20] * 100, feature_name=NAMES), num_boost_round=30)
    return LoadedModel(booster, "77", "champion", list(NAMES))


def write_windows(store, settings, counts: pa.Table) -> None:  # type: ignore[no-untyped-def]
    """What the streaming job writes for these per-window counts (same functions, same store call)."""
    for entity, window, feats in streaming.groups():
        streaming.ensure_live(store, streaming.namespace(entity, window), feats)
    for window in streaming.windows():
        for ns, (keys, payloads) in streaming.packed_rows(counts, window, settings).items():
            store.write_live(ns, streaming.version(), keys, payloads)


def defaults_counted(server, feature: str, reason: str) -> float:  # type: ignore[no-untyped-def]
    value = server.ranker.metrics.registry.get_sample_value(
        "rankops_stream_feature_defaults_total", {"feature": feature, "reason": reason}
    )
    return value or 0.0


@pytest.fixture
def private_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    private = PrivateRedis(tmp_path / "redis")
    private.start()
    yield private
    private.stop()


def seed_batch_features(store, layout: str) -> None:  # type: ignore[no-untyped-def]
    """Items joined to sellers and categories: ``narrow`` (keys only) or ``wide`` (the joined
    entities' values inlined, as ``materialize`` writes them: the seller key must still come back)."""
    items = h.item_ids(COUNT)
    joins = [[h.seller_of(k), h.category_of(k)] for k in range(COUNT)]
    assert registry.joined_entities("item") == ["seller", "category"]
    sellers = sorted({h.seller_of(k) for k in range(COUNT)})
    seller_values = h.entity_features("seller", sellers)
    category_values = h.entity_features("category", list(h.CATEGORIES))
    h._write(store, "seller", "v1", sellers, seller_values)
    h._write(store, "category", "v1", list(h.CATEGORIES), category_values)
    if layout == "narrow":
        h._write(store, "item", "v1", items, h.item_features(COUNT), joins)
        return
    wide = inline.widen(
        "item",
        h.item_features(COUNT),
        [pa.array([j[0] for j in joins]), pa.array([j[1] for j in joins])],
        {"seller": (pa.array(sellers), seller_values), "category": (pa.array(h.CATEGORIES), category_values)},
    )
    store.write_batch("item", "v1", items, pack_rows("v1", wide, joins))
    store.activate("item", "v1", inline.layout("item"), registry.joined_entities("item"))


@pytest.mark.parametrize("layout", ["narrow", "wide"])
def test_server_ranks_with_streaming_features_from_redis(serving_home, private_redis, layout: str) -> None:  # type: ignore[no-untyped-def]
    settings = serving_home.settings
    store = redis_store(private_redis.url, f"stream-serving-{layout}", timeout_ms=200, recheck_seconds=0.0)
    seed_batch_features(store, layout)
    end = streaming.serving_window_end(h.NOW)
    # i-7 was clicked a lot in the last hour; i-0..i-5 were shown without clicks; the rest have no value
    keys = ["i-7", *[f"i-{k}" for k in range(6)], h.seller_of(3)]
    counts = pa.table(
        {
            "entity": ["item"] * 7 + ["seller"],
            "key": keys,
            "end_s": [end] * 8,
            "impressions": [60] + [80] * 6 + [0],
            "clicks": [45] + [0] * 6 + [0],
            "contacts": [0] * 7 + [9],
        }
    )
    write_windows(store, settings, counts)

    server = build_server(settings, stores={"item": store, "seller": store, "category": store})
    server.ranker.set_routing(Routing(stream_ranker()))
    client = h.AsgiClient(server.app)
    try:
        response = client.post("/invocations", json=h.request(10, ts=h.NOW))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["variant"], answer["model_version"]) == ("champion", "77"), answer["fallback"]
        assert answer["ranking"][0]["item_id"] == "i-7", "the hour's clicks lift i-7 to the top"

        request = h.request(10, ts=h.NOW)
        features = server.ranker.features(parse_request(json.dumps(request).encode(), "application/json", 100, 1 << 20))
        k = settings.features.ctr_prior_strength
        assert features.columns["item_ctr_1h"][7] == (45 + 0.1 * k) / (60 + k)
        assert features.columns["item_ctr_1h"][8] == registry.feature("item_ctr_1h").default
        contacts = features.columns["seller_contacts_1h"]
        assert [contacts[i] for i in range(10) if h.seller_of(i) == h.seller_of(3)] == [9.0] * sum(
            h.seller_of(i) == h.seller_of(3) for i in range(10)
        )
        # i-6, i-8, i-9 have no value for the current window: defaults, counted in each of the 2 requests
        assert defaults_counted(server, "item_ctr_1h", "missing_or_stale") == 6

        later = h.request(10, ts=h.NOW + registry.STREAM_SLIDE.total_seconds())  # the job stalled a window
        stale = client.post("/invocations", json=later).json()
        assert stale["variant"] == "champion"
        assert defaults_counted(server, "item_ctr_1h", "missing_or_stale") == 16

        private_redis.stop()  # the whole store is gone: the request still answers, defaults counted
        down = client.post("/invocations", json=h.request(10, ts=h.NOW))
        # the fallback model ranks from the server's item snapshot (rankops.serving.snapshot)
        assert down.status_code == 200 and down.json()["variant"] == "fallback"
        failed = defaults_counted(server, "item_ctr_1h", "store_error")
        failed += defaults_counted(server, "item_ctr_1h", "budget")
        assert failed == 10
    finally:
        client.close()
        server.ranker.lookup.close()


def test_a_dead_streaming_store_leaves_the_champion_answering_on_defaults(serving_home) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    cfg = RedisConfig(url=f"redis://127.0.0.1:{port}/0", socket_timeout_ms=50, connect_timeout_ms=50)
    dead = RedisStore(make_redis(cfg), cfg)
    server = build_server(serving_home.settings)  # batch features in the embedded store
    server.ranker.set_routing(Routing(stream_ranker()))
    server.ranker.stream = build_stream_lookup({"item": dead, "seller": dead}, server.ranker.metrics)
    client = h.AsgiClient(server.app)
    try:
        answer = client.post("/invocations", json=h.request(10, ts=h.NOW)).json()
        assert (answer["variant"], answer["fallback"]) == ("champion", None)
        assert defaults_counted(server, "item_ctr_1h", "store_error") == 10
        assert defaults_counted(server, "seller_contacts_1h", "store_error") == 10
    finally:
        client.close()
        server.ranker.lookup.close()
