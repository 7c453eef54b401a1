"""The feature pipeline as it runs in production: incremental hourly runs equal a
backfill, a failed validation or a failed materialization leaves the previous
version serving, and cloud routing (items and categories in Redis, sellers in
DynamoDB) serves exactly the offline values."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from rankops.errors import StoreError, ValidationFailed
from rankops.features import offline, registry
from rankops.features.lookup import FeatureLookup
from rankops.features.materialize import materialize
from rankops.features.offline import latest as offline_latest
from rankops.features.online.dynamodb import DynamoDBConfig, DynamoDBStore, make_dynamodb
from rankops.features.online.factory import open_stores
from rankops.features.online.redis import RedisConfig, RedisStore, make_redis
from rankops.lake import Lake
from tests.conftest import make_settings

HOURS = timedelta(hours=1)


def copy_raw(market: Any, home: Any) -> tuple[Any, Lake]:
    settings = make_settings(home)
    lake = Lake.from_settings(settings)
    shutil.copytree(market.lake.zone_uri("raw"), lake.zone_uri("raw"))
    return settings, lake


def offline_rows(lake: Lake, settings: Any, entity: str) -> list[dict[str, Any]]:
    table = lake.read("features", offline.dataset_name(settings, entity)).drop_columns(["dt"])
    key = registry.ENTITIES[entity].key
    return table.sort_by([(key, "ascending"), ("feature_ts", "ascending")]).to_pylist()


def test_incremental_runs_equal_a_backfill(spark, market, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings, lake = copy_raw(market, tmp_path / "incremental")
    full = offline.read_manifest(market.lake, market.settings)
    end = datetime.fromisoformat(full["published_through"])
    first = offline.resolve_window(lake, end=end - 6 * HOURS)
    assert first.backfill
    offline.build(spark, lake, settings, first)
    for lo in (6, 3):
        window = offline.TimeWindow(end - lo * HOURS, end - (lo - 3) * HOURS)
        result = offline.build(spark, lake, settings, window)
        assert result.rows["item"] > 0 and result.window == window
    for entity in registry.stored_entities():
        assert offline_rows(lake, settings, entity) == offline_rows(market.lake, market.settings, entity), entity
    assert offline.read_manifest(lake, settings)["published_through"] == full["published_through"]


def assert_snapshot_equals_history(lake: Lake, settings: Any) -> dict[str, Any]:
    """Each entity's latest values read from the snapshot are the history scan's, exactly."""
    manifest = offline.read_manifest(lake, settings)
    assert manifest["latest_snapshot"]["run_id"] == manifest["last_run"]["run_id"]
    through = datetime.fromisoformat(manifest["published_through"])
    out = {}
    for entity in registry.stored_entities():
        snapshot = offline_latest._latest_from_snapshot(lake, settings, entity, manifest)
        assert snapshot is not None, f"{entity}: no current snapshot"
        scanned = offline_latest._latest_from_history(lake, settings, entity, through)
        assert snapshot.schema.equals(scanned.schema), entity  # names, types, nullability (not Spark metadata)
        assert snapshot.num_rows == scanned.num_rows > 0, entity
        assert snapshot.equals(scanned), entity
        assert offline.latest_values(lake, settings, entity).equals(scanned), entity
        out[entity] = snapshot
    return out


def test_latest_snapshot_equals_the_history_scan_across_incremental_gap_and_old_window_runs(  # type: ignore[no-untyped-def]
    spark, market, tmp_path
) -> None:
    settings, lake = copy_raw(market, tmp_path / "snapshot")
    end = datetime.fromisoformat(offline.read_manifest(market.lake, market.settings)["published_through"])
    first = offline.build(spark, lake, settings, offline.resolve_window(lake, end=end - 6 * HOURS))
    assert set(first.latest.values()) == {"full"}, "a backfill rebuilds the snapshot"
    early = assert_snapshot_equals_history(lake, settings)["item"]
    early_ts = dict(zip(early["item_id"].to_pylist(), early["feature_ts"].to_pylist(), strict=True))

    # Contiguous incremental run, then one after a gap (the hour between is never built yet).
    runs = [offline.TimeWindow(end - 6 * HOURS, end - 5 * HOURS), offline.TimeWindow(end - 4 * HOURS, end - 2 * HOURS)]
    for window in runs:
        result = offline.build(spark, lake, settings, window)
        assert set(result.latest.values()) == {"incremental"}, window
        final = assert_snapshot_equals_history(lake, settings)["item"]
    only_early = [
        k
        for k, ts in zip(final["item_id"].to_pylist(), final["feature_ts"].to_pylist(), strict=True)
        if ts <= end - 6 * HOURS and early_ts.get(k) == ts
    ]
    assert only_early, "some items' latest row comes from the first run only"
    # Earlier times read the history.
    before = offline.latest_values(lake, settings, "item", before=end - 5 * HOURS)
    assert before.equals(offline_latest._latest_from_history(lake, settings, "item", end - 5 * HOURS))

    # A snapshot the manifest does not vouch for is ignored by readers and rebuilt by the next run.
    manifest = offline.read_manifest(lake, settings)
    lake.write_json(offline.manifest_uri(lake, settings), {**manifest, "latest_snapshot": None})
    assert offline_latest._latest_from_snapshot(lake, settings, "item", offline.read_manifest(lake, settings)) is None
    assert offline.latest_values(lake, settings, "item").equals(final)
    result = offline.build(spark, lake, settings, offline.TimeWindow(end - 2 * HOURS, end))
    assert set(result.latest.values()) == {"full"}
    assert_snapshot_equals_history(lake, settings)

    # A re-run of an old window (here: the gap) rebuilds the snapshot from the full history.
    rerun = offline.build(spark, lake, settings, offline.TimeWindow(end - 5 * HOURS, end - 4 * HOURS))
    assert set(rerun.latest.values()) == {"full"}
    rebuilt = assert_snapshot_equals_history(lake, settings)
    for entity in registry.stored_entities():  # the history is now the backfill's: so are the latest values
        assert rebuilt[entity].equals(offline.latest_values(market.lake, market.settings, entity)), entity


def test_a_failed_validation_publishes_nothing_and_the_previous_version_keeps_serving(spark, market, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings, lake = copy_raw(market, tmp_path / "rejected")
    end = datetime.fromisoformat(offline.read_manifest(market.lake, market.settings)["published_through"])
    window = offline.TimeWindow(end - 3 * HOURS, end)
    offline.build(spark, lake, settings, window)
    materialize(lake, settings)
    lookup = FeatureLookup(open_stores(settings, registry.stored_entities()))
    before = lookup.stores["item"].active_version("item")
    manifest = offline.read_manifest(lake, settings)
    served = lookup.fetch_items(["i-1", "i-2"]).columns

    # Upstream breaks: a listing with a negative price arrives inside the window.
    bad = pa.table(
        {
            "item_id": ["i-broken"],
            "seller_id": ["s-1"],
            "category": ["toys"],
            "price": [-5.0],
            "image_quality": [0.5],
            "created_at": pa.array([end - 2 * HOURS], pa.timestamp("ms", tz="UTC")),
        }
    )
    lake.write_partition("raw", "items", {"dt": "2099-01-01"}, bad)
    with pytest.raises(ValidationFailed, match=r"price\.range") as failed:
        offline.build(spark, lake, settings, window, run_id="rejected-run")
    report = lake.read_json(offline.meta_uri(lake, settings, "runs", "rejected-run.json"))
    assert report["status"] == "rejected"
    assert any(f["check"] == "price.range" and "outside" in f["detail"] for f in report["failures"])
    assert "rejected-run.json" in str(failed.value)
    assert offline.read_manifest(lake, settings) == manifest, "nothing was published"
    snapshot = lake.partitions("features", offline.latest_dataset_name(settings, "item"))
    assert [p.run_id for p in snapshot] == [manifest["last_run"]["run_id"]], "the snapshot was not replaced"
    assert "i-broken" not in offline.latest_values(lake, settings, "item")["item_id"].to_pylist()
    assert lookup.stores["item"].active_version("item") == before
    again = lookup.fetch_items(["i-1", "i-2"]).columns
    assert all(np.array_equal(again[n], served[n], equal_nan=True) for n in served)
    lookup.close()


def test_a_feature_that_is_always_missing_fails_validation_and_publishes_nothing(spark, market, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Defaults are filled in after they are counted: a catalog without image scores is 100%
    default for image_quality_score, which the default limit (0.5) rejects."""
    settings, lake = copy_raw(market, tmp_path / "no-images")
    for part, table in list(lake.iter_partitions("raw", "items")):
        blank = pa.nulls(table.num_rows, pa.float64())
        table = table.drop_columns(["dt"]).set_column(
            table.schema.get_field_index("image_quality"), "image_quality", blank
        )
        lake.write_partition("raw", "items", part.values, table)
    with pytest.raises(
        ValidationFailed, match=r"item\.image_quality_score\.default_rate: default rate 1\.0000 \(max 0\.5\)"
    ):
        offline.build(spark, lake, settings, run_id="no-images")
    report = lake.read_json(offline.meta_uri(lake, settings, "runs", "no-images.json"))
    assert report["status"] == "rejected"
    assert [f["check"] for f in report["failures"]] == ["image_quality_score.default_rate"]
    item = report["stats"]["item"]
    assert item["features"]["image_quality_score"]["defaults"] == item["rows"] > 0
    assert item["features"]["price"]["defaults"] == 0 and item["features"]["image_quality_score"]["nulls"] == 0
    assert not lake.exists(offline.manifest_uri(lake, settings)), "nothing was published"
    for entity in registry.stored_entities():
        assert not lake.partitions("features", offline.dataset_name(settings, entity)), entity

    # A catalog that really has no image scores can say so: the feature's own limit.
    allowed = make_settings(settings.home, features={"max_default_rate": '{"image_quality_score": 1.0}'})
    assert offline.build(spark, lake, allowed).rows["item"] == item["rows"]


class FailingStore:
    """A real store whose connection drops after ``ok_batches`` writes."""

    def __init__(self, inner: Any, ok_batches: int) -> None:
        self.inner, self.left = inner, ok_batches
        self.kind = inner.kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_batch(self, *args: Any) -> None:
        if self.left <= 0:
            raise StoreError("connection reset by peer")
        self.left -= 1
        self.inner.write_batch(*args)


def test_a_failed_materialization_leaves_the_previous_version_live(market, redis_target) -> None:  # type: ignore[no-untyped-def]
    cfg = RedisConfig(url=redis_target.url, key_prefix=f"{redis_target.prefix}:failmat")
    store = RedisStore(make_redis(cfg, for_writes=True), cfg, recheck_seconds=0)
    stores = dict.fromkeys(registry.stored_entities(), store)
    settings = make_settings(market.settings.home, features={"materialize_batch_rows": 100})
    first = materialize(market.lake, settings, stores=stores)
    with pytest.raises(StoreError, match="connection reset"):
        materialize(market.lake, settings, stores=dict.fromkeys(stores, FailingStore(store, ok_batches=3)))
    assert store.active_version("item").version == first["item"]["version"]
    items = offline.latest_values(market.lake, market.settings, "item")
    lookup = FeatureLookup(stores)
    fetched = lookup.fetch({"item": items["item_id"].to_pylist()})
    assert fetched.found.all()
    assert np.array_equal(fetched.columns["ctr_7d"], items["ctr_7d"].to_numpy())
    materialize(market.lake, market.settings, stores=stores)  # the writer lock was released
    assert settings.features.materialize_batch_rows == 100


def test_cloud_routing_serves_exactly_the_offline_values(market, redis_target, synthesized_env) -> None:  # type: ignore[no-untyped-def]
    """Items and categories in Redis, sellers in DynamoDB (moto, the table as CDK deploys it), as the
    cloud envs route them."""
    from moto import mock_aws

    from tests.deployed import create_dynamodb_table

    settings, lake = market.settings, market.lake
    rcfg = RedisConfig(url=redis_target.url, key_prefix=f"{redis_target.prefix}:routing")
    template = synthesized_env("dev").template("online-stores")
    with mock_aws():
        dcfg = DynamoDBConfig(table="entity-stats", region="eu-west-1")
        dynamo = DynamoDBStore(make_dynamodb(dcfg), dcfg, recheck_seconds=0)
        create_dynamodb_table(dynamo.client, template, dcfg.table)
        redis = RedisStore(make_redis(rcfg), rcfg, recheck_seconds=0)
        stores = {"item": redis, "category": redis, "seller": dynamo}
        materialize(lake, settings, stores=stores)
        lookup = FeatureLookup(stores)
        items = offline.latest_values(lake, settings, "item")
        ids = items["item_id"].to_pylist()
        fetched = lookup.fetch_items(ids)
        assert fetched.found.all()
        expected: dict[str, np.ndarray] = {
            n: items[n].to_numpy(zero_copy_only=False) for n in registry.stored_names("item")
        }
        for entity in ("seller", "category"):
            key = registry.ENTITIES[entity].key
            table = offline.latest_values(lake, settings, entity)
            pos = {k: i for i, k in enumerate(table[key].to_pylist())}
            rows = [pos[k] for k in items[key].to_pylist()]
            for name in registry.stored_names(entity):
                expected[name] = table[name].to_numpy(zero_copy_only=False)[rows]
        mismatches = sum(
            int((~((fetched.columns[n] == v) | (np.isnan(fetched.columns[n]) & np.isnan(v)))).sum())
            for n, v in expected.items()
        )
        assert mismatches == 0
        lookup.close()
