"""Feature computation with real Spark: exact values, point-in-time correctness,
no leakage, and offline/online parity through the embedded store."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from rankops.features import offline, registry
from rankops.features import spark as fspark
from rankops.features.lookup import FeatureLookup
from rankops.features.materialize import materialize
from rankops.features.online import open_store

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def at(hour: float) -> datetime:
    return datetime.fromtimestamp(T0.timestamp() + hour * 3600, tz=UTC)


def frames(spark, events: list[tuple], items: list[tuple]):  # type: ignore[no-untyped-def]
    ev = spark.createDataFrame(events, "item_id string, ts timestamp, position int, clicked boolean")
    it = spark.createDataFrame(
        items, "item_id string, category string, price double, image_quality double, created_at timestamp"
    )
    return ev, it


def features_at(spark, settings, events, items, when: list[tuple[str, datetime]]) -> dict:  # type: ignore[no-untyped-def]
    ev, it = frames(spark, events, items)
    feats = fspark.item_features(ev, it, settings)
    left = spark.createDataFrame(when, "item_id string, ts timestamp")
    names = [f.name for f in registry.stored_features("item")]
    rows = fspark.as_of_join(left, feats, "item_id", "ts", names).collect()
    return {(r["item_id"], r["ts"].replace(tzinfo=UTC)): r.asDict() for r in rows}


ITEM = [("i-1", "toys", 10.0, 0.8, at(-48))]


def test_ctr_is_smoothed_and_position_debiased(spark, settings) -> None:  # type: ignore[no-untyped-def]
    eta, k, prior = settings.features.position_bias_eta, settings.features.ctr_prior_strength, 0.1
    events = [("i-1", at(0.5), 1, True), ("i-1", at(0.6), 4, False)]
    got = features_at(spark, settings, events, ITEM, [("i-1", at(1.5))])[("i-1", at(1.5))]
    examinations = 1.0 + 4.0**-eta
    assert got["ctr_7d"] == pytest.approx((1 + prior * k) / (examinations + k))
    assert got["impressions_7d"] == 2
    assert got["image_quality_score"] == 0.8 and got["price"] == 10.0


def test_no_leakage_from_a_planted_future_event(spark, settings) -> None:  # type: ignore[no-untyped-def]
    """A feature row used at time t only sees events before t: a burst of clicks
    planted at hour 5 must not reach a request at hour 3, only one at hour 6."""
    past = [("i-1", at(0.5), 1, False)]
    planted = [("i-1", at(5.2), 1, True) for _ in range(50)]
    asked = [("i-1", at(3)), ("i-1", at(5.1)), ("i-1", at(6))]
    with_plant = features_at(spark, settings, past + planted, ITEM, asked)
    without = features_at(spark, settings, past, ITEM, asked)
    for when in (at(3), at(5.1)):
        assert with_plant[("i-1", when)]["ctr_7d"] == without[("i-1", when)]["ctr_7d"]
        assert with_plant[("i-1", when)]["impressions_7d"] == 1
    assert with_plant[("i-1", at(6))]["impressions_7d"] == 51
    assert with_plant[("i-1", at(6))]["ctr_7d"] > 0.5


def test_events_of_the_same_hour_are_not_visible_before_the_hour_ends(spark, settings) -> None:  # type: ignore[no-untyped-def]
    events = [("i-1", at(2.1), 1, True), ("i-1", at(2.9), 1, True)]
    got = features_at(spark, settings, events, ITEM, [("i-1", at(2.5)), ("i-1", at(3.0))])
    assert got[("i-1", at(2.5))]["impressions_7d"] == 0
    assert got[("i-1", at(3.0))]["impressions_7d"] == 2


def test_window_expires_after_seven_days(spark, settings) -> None:  # type: ignore[no-untyped-def]
    events = [("i-1", at(0.5), 1, True)]
    got = features_at(spark, settings, events, ITEM, [("i-1", at(24 * 7)), ("i-1", at(24 * 7 + 1.01))])
    assert got[("i-1", at(24 * 7))]["impressions_7d"] == 1
    assert got[("i-1", at(24 * 7 + 1.01))]["impressions_7d"] == 0
    assert got[("i-1", at(24 * 7 + 1.01))]["ctr_7d"] == pytest.approx(0.1)


def test_items_unknown_before_creation(spark, settings) -> None:  # type: ignore[no-untyped-def]
    items = [("i-2", "toys", 5.0, 0.3, at(10))]
    got = features_at(spark, settings, [], items, [("i-2", at(9)), ("i-2", at(10))])
    assert got[("i-2", at(9))]["price"] is None, "no row exists before the item does"
    assert got[("i-2", at(10))]["price"] == 5.0


def test_offline_online_parity_for_every_entity(market) -> None:  # type: ignore[no-untyped-def]
    """Every materialized entity reads back online exactly as the offline store has it."""
    settings, lake = market.settings, market.lake
    report = materialize(lake, settings)
    latest = offline.latest_values(lake, settings, "item")
    keys = latest["item_id"].to_pylist()
    assert report["item"]["rows"] == len(keys) > 1000
    lookup = FeatureLookup({"item": open_store(settings, "item")})
    fetched = lookup.fetch({"item": keys})
    assert fetched.found.all()
    mismatches = 0
    for feature in registry.stored_features("item"):
        expected = latest[feature.name].to_numpy(zero_copy_only=False).astype(np.float64)
        mismatches += int((~np.isclose(fetched.columns[feature.name], expected, rtol=0, atol=0, equal_nan=True)).sum())
    assert mismatches == 0
    missing = lookup.fetch({"item": ["i-does-not-exist"]})
    assert not missing.found[0]
    assert missing.columns["ctr_7d"][0] == registry.feature("ctr_7d").default
    lookup.close()


def test_offline_store_is_partitioned_and_versioned(market) -> None:  # type: ignore[no-untyped-def]
    settings, lake = market.settings, market.lake
    parts = lake.partitions("features", offline.dataset_name(settings, "item"))
    assert parts and all(set(p.values) == {"dt"} for p in parts)
    manifest = lake.read_json(offline.manifest_uri(lake, settings))
    assert manifest["version"] == offline.feature_set_version(settings)
    assert manifest["entities"]["item"] == [f.name for f in registry.stored_features("item")]
