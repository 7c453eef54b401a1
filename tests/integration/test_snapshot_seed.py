"""A server started while its online store is down still ranks: the item snapshot is seeded from
the offline store at start, with exactly the values the online store serves (joined seller and
category values as materialization inlines them)."""

from __future__ import annotations

import shutil

import numpy as np

from rankops.features import registry
from rankops.features.lookup import FeatureLookup
from rankops.features.materialize import materialize
from rankops.features.online.factory import open_stores
from rankops.lake import Lake
from rankops.serving.snapshot import ItemSnapshot, for_fallback_levels, snapshot_columns
from rankops.serving.snapshot_warm import seed_from_lake, start_seeding
from tests.conftest import MarketHome, make_settings


def test_the_seed_holds_what_the_online_store_serves(market: MarketHome, tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    shutil.copytree(market.settings.home, home)
    settings = make_settings(home)
    lake = Lake.from_settings(settings)
    materialize(lake, settings)
    every = [n for e in ("item", *registry.joined_entities("item")) for n in registry.stored_names(e)]
    snapshot = ItemSnapshot(snapshot_columns(every), capacity=1_000_000)
    seeded = seed_from_lake(snapshot, lake, settings)
    stores = open_stores(settings, registry.stored_entities())
    lookup = FeatureLookup(stores)
    items = list(snapshot._index)[:500]
    assert seeded == len(snapshot) > 500
    served = lookup.fetch_items(items)
    filled = snapshot.fill(items, snapshot.columns)
    assert filled is not None and filled[1] == len(items)
    for name in snapshot.columns:
        assert np.array_equal(filled[0][name], served.columns[name], equal_nan=True), name
    for store in {id(s): s for s in stores.values()}.values():
        store.close()


def test_a_seed_runs_in_the_background_and_a_lake_without_features_only_logs(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "empty")
    snapshot = for_fallback_levels(10, [])
    thread = start_seeding(snapshot, Lake.from_settings(settings), settings)
    assert thread is not None
    thread.join()
    assert snapshot is not None and len(snapshot) == 0
    assert "not seeded from the offline store" in caplog.text
    assert start_seeding(None, Lake.from_settings(settings), settings) is None
