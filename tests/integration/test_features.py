"""Feature computation with real Spark: exact values, point-in-time correctness,
no leakage (for every entity), and offline/online parity through the embedded store."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from rankops.features import offline, registry
from rankops.features import spark as fspark
from rankops.features.lookup import FeatureLookup
from rankops.features.materialize import materialize, rows_of, write_version
from rankops.features.online.factory import open_stores

T0 = datetime(2026, 11, 2, tzinfo=UTC)
FAR = datetime(2027, 6, 1, tzinfo=UTC)
ITEMS_SCHEMA = (
    "item_id string, seller_id string, category string, price double, image_quality double, created_at timestamp"
)


def at(hour: float) -> datetime:
    return datetime.fromtimestamp(T0.timestamp() + hour * 3600, tz=UTC)


def frames(spark, events: list[tuple], items: list[tuple]):  # type: ignore[no-untyped-def]
    ev = spark.createDataFrame(events, "item_id string, ts timestamp, position int, clicked boolean, contacted boolean")
    it = spark.createDataFrame(items, ITEMS_SCHEMA)
    return ev, it


def features_at(spark, settings, events, items, when: list[tuple[str, datetime]], entity: str = "item") -> dict:  # type: ignore[no-untyped-def]
    ev, it = frames(spark, [e if len(e) == 5 else (*e, False) for e in events], items)
    hourly = fspark.item_hourly(ev, settings.features.position_bias_eta)
    feats = fspark.entity_features(entity, hourly, fspark.catalog(it), settings, 0, int(FAR.timestamp() * 1000))
    key = registry.ENTITIES[entity].key
    left = spark.createDataFrame(when, f"{key} string, ts timestamp")
    names = [*registry.join_keys(entity), *registry.stored_names(entity)]
    rows = fspark.as_of_join(left, feats, key, "ts", names).collect()
    return {(r[key], r["ts"].replace(tzinfo=UTC)): r.asDict() for r in rows}


ITEM = [("i-1", "s-1", "toys", 10.0, 0.8, at(-48))]


def test_ctr_is_smoothed_and_position_debiased(spark, settings) -> None:  # type: ignore[no-untyped-def]
    eta, k, prior = settings.features.position_bias_eta, settings.features.ctr_prior_strength, 0.1
    events = [("i-1", at(0.5), 1, True), ("i-1", at(0.6), 4, False)]
    got = features_at(spark, settings, events, ITEM, [("i-1", at(1.5))])[("i-1", at(1.5))]
    examinations = 1.0 + 4.0**-eta
    assert got["ctr_7d"] == pytest.approx((1 + prior * k) / (examinations + k), rel=1e-9)
    assert got["impressions_7d"] == 2
    assert got["image_quality_score"] == 0.8 and got["price"] == 10.0
    assert (got["seller_id"], got["category"]) == ("s-1", "toys"), "the item row carries its join keys"


def test_no_leakage_from_a_planted_future_event(spark, settings) -> None:  # type: ignore[no-untyped-def]
    """A feature row used at time t only sees events before t: a burst of clicks
    planted at hour 5 must not reach a request at hour 3, only one at hour 6."""
    past = [("i-1", at(0.5), 1, False)]
    planted = [("i-1", at(5.2), 1, True, True) for _ in range(50)]
    asked = [("i-1", at(3)), ("i-1", at(5.1)), ("i-1", at(6))]
    with_plant = features_at(spark, settings, past + planted, ITEM, asked)
    without = features_at(spark, settings, past, ITEM, asked)
    for when in (at(3), at(5.1)):
        assert with_plant[("i-1", when)]["ctr_7d"] == without[("i-1", when)]["ctr_7d"]
        assert with_plant[("i-1", when)]["impressions_7d"] == 1
    assert with_plant[("i-1", at(6))]["impressions_7d"] == 51
    assert with_plant[("i-1", at(6))]["ctr_7d"] > 0.5


@pytest.mark.parametrize(
    ("entity", "key", "feature"),
    [("seller", "s-1", "seller_avg_contact_rate"), ("category", "toys", "category_ctr_7d")],
)
def test_no_leakage_into_seller_and_category_rows(spark, settings, entity, key, feature) -> None:  # type: ignore[no-untyped-def]
    """The same planted burst (clicks with contacts) reaches the seller's and the category's
    rows only after its hour has ended, not a moment earlier."""
    past = [("i-1", at(0.5), 1, True, False)]
    planted = [("i-1", at(5.2), 1, True, True) for _ in range(50)]
    asked = [(key, at(3)), (key, at(5.99)), (key, at(6))]
    with_plant = features_at(spark, settings, past + planted, ITEM, asked, entity)
    without = features_at(spark, settings, past, ITEM, asked, entity)
    for when in (at(3), at(5.99)):
        assert with_plant[(key, when)][feature] == without[(key, when)][feature]
    assert with_plant[(key, at(6))][feature] > without[(key, at(6))][feature] + 0.2


def test_catalog_statistics_are_point_in_time(spark, settings) -> None:  # type: ignore[no-untyped-def]
    items = [
        ("i-1", "s-1", "toys", 10.0, 0.8, at(-48)),
        ("i-2", "s-1", "toys", 40.0, 0.5, at(2)),
        ("i-3", "s-2", "toys", 1000.0, 0.5, at(10)),
    ]
    sellers = features_at(spark, settings, [], items, [("s-1", at(1)), ("s-1", at(2)), ("s-2", at(9))], "seller")
    assert sellers[("s-1", at(1))]["seller_item_count"] == 1
    assert sellers[("s-1", at(2))]["seller_item_count"] == 2
    assert sellers[("s-2", at(9))]["seller_item_count"] is None, "no seller row before its first listing"
    cats = features_at(spark, settings, [], items, [("toys", at(5)), ("toys", at(11))], "category")
    assert cats[("toys", at(5))]["category_mean_price"] == pytest.approx(25.0)
    assert cats[("toys", at(11))]["category_mean_price"] == pytest.approx(350.0), "i-3 counts from its creation on"
    logs = np.log([10.0, 40.0])
    assert cats[("toys", at(5))]["category_log_price_mean"] == pytest.approx(logs.mean(), abs=1e-8)
    assert cats[("toys", at(5))]["category_log_price_std"] == pytest.approx(logs.std(), abs=1e-6)


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
    items = [("i-2", "s-1", "toys", 5.0, 0.3, at(10))]
    got = features_at(spark, settings, [], items, [("i-2", at(9)), ("i-2", at(10))])
    assert got[("i-2", at(9))]["price"] is None, "no row exists before the item does"
    assert got[("i-2", at(10))]["price"] == 5.0


def test_offline_online_parity_for_every_entity(market) -> None:  # type: ignore[no-untyped-def]
    """Every materialized entity of every entity type reads back online exactly as the
    offline store has it (bit for bit), and items reach their seller and category."""
    settings, lake = market.settings, market.lake
    report = materialize(lake, settings)
    lookup = FeatureLookup(open_stores(settings, registry.stored_entities()))
    mismatches = 0
    for entity in registry.stored_entities():
        latest = offline.latest_values(lake, settings, entity)
        keys = latest[registry.ENTITIES[entity].key].to_pylist()
        assert report[entity]["rows"] == len(keys) > 0
        fetched = lookup.fetch({entity: keys})
        assert fetched.found.all()
        for name in registry.stored_names(entity):
            expected = latest[name].to_numpy(zero_copy_only=False).astype(np.float64)
            got = fetched.columns[name]
            mismatches += int((~((got == expected) | (np.isnan(got) & np.isnan(expected)))).sum())
    assert mismatches == 0
    items = offline.latest_values(lake, settings, "item")
    sellers = {r["seller_id"]: r for r in offline.latest_values(lake, settings, "seller").to_pylist()}
    ids = items["item_id"].to_pylist()
    assert report["item"]["inlined"], "items carry their seller's and category's values"
    reads = CountingReads(lookup)
    fetched = lookup.fetch_items(ids)
    assert reads.calls == 1, "every entity of the candidates in one round trip"
    assert fetched.found.all()
    reads.calls = 0
    keyed = lookup.fetch_items(ids, join_keys=True)  # the keys too (streaming reads): same features, one read
    assert reads.calls == 1 and keyed.found.all()
    assert keyed.joins["seller"] == items["seller_id"].to_pylist()
    assert keyed.joins["category"] == items["category"].to_pylist()
    assert all(np.array_equal(keyed.columns[n], fetched.columns[n], equal_nan=True) for n in fetched.columns)
    for i, seller in enumerate(items["seller_id"].to_pylist()):
        assert fetched.columns["seller_item_count"][i] == sellers[seller]["seller_item_count"]
    # Parity with reading the joined entities separately (their own stored values), bit for bit.
    for entity in registry.joined_entities("item"):
        own = lookup.fetch({entity: items[registry.ENTITIES[entity].key].to_pylist()})
        for name in registry.stored_names(entity):
            assert np.array_equal(fetched.columns[name], own.columns[name], equal_nan=True), name
    missing = lookup.fetch_items(["i-does-not-exist", ids[0]])
    assert missing.found.tolist() == [False, True]
    assert missing.columns["ctr_7d"][0] == registry.feature("ctr_7d").default
    assert missing.columns["seller_item_count"][0] == registry.feature("seller_item_count").default
    assert missing.columns["seller_item_count"][1] == fetched.columns["seller_item_count"][0]

    # An item version written before values were inlined (own columns and join keys only) still
    # serves the same features, with one more read for the joined entities.
    rows = rows_of(offline.latest_values(lake, settings, "item"), "item")
    write_version(lookup.stores["item"], "item", "before-inlining", rows, 1000)
    reads.calls = 0
    old = lookup.fetch_items(ids)
    assert reads.calls == 2
    assert old.found.all()
    assert all(np.array_equal(old.columns[n], fetched.columns[n], equal_nan=True) for n in fetched.columns)
    lookup.close()


class CountingReads:
    """Counts the store round trips of a lookup (wraps each store's ``read_many``)."""

    def __init__(self, lookup: FeatureLookup) -> None:
        self.calls = 0
        for store in {id(s): s for s in lookup.stores.values()}.values():
            inner = store.read_many

            def counted(requests, inner=inner):  # type: ignore[no-untyped-def]
                self.calls += 1
                return inner(requests)

            store.read_many = counted  # type: ignore[method-assign]


def test_offline_store_is_partitioned_versioned_and_reported(market) -> None:  # type: ignore[no-untyped-def]
    settings, lake = market.settings, market.lake
    for entity in registry.stored_entities():
        parts = lake.partitions("features", offline.dataset_name(settings, entity))
        assert parts and all(set(p.values) == {"dt"} for p in parts)
    manifest = offline.read_manifest(lake, settings)
    assert manifest["version"] == offline.feature_set_version(settings)
    assert manifest["entities"]["item"]["features"] == registry.stored_names("item")
    assert manifest["entities"]["item"]["joins"] == ["seller_id", "category"]
    report = lake.read_json(offline.meta_uri(lake, settings, "runs", f"{manifest['last_run']['run_id']}.json"))
    assert report["status"] == "published" and report["failures"] == []
    assert {c["check"] for c in report["checks"]} >= {"schema", "rows", "ctr_7d.range", "freshness"}


def test_latest_values_never_include_rows_after_the_published_end(market) -> None:  # type: ignore[no-untyped-def]
    settings, lake = market.settings, market.lake
    end = datetime.fromisoformat(offline.read_manifest(lake, settings)["published_through"])
    latest = offline.latest_values(lake, settings, "item")
    assert max(latest["feature_ts"].to_pylist()) <= end
    assert not any(math.isnan(v) for v in latest["ctr_7d"].to_pylist())
