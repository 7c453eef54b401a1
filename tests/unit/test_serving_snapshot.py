"""The item snapshot the fallback levels read during a store outage: which columns it holds,
its bound, and when it refuses to stand in (a cold snapshot must not pass defaults off as a ranking)."""

from __future__ import annotations

import numpy as np
import pytest

from rankops.features import registry
from rankops.serving.snapshot import ItemSnapshot, for_fallback_levels, snapshot_columns
from rankops.training.baseline import RULE_INPUTS


def _columns(ids: list[str], base: float) -> dict[str, np.ndarray]:
    return {n: base + np.arange(len(ids), dtype=float) + j / 10 for j, n in enumerate(("ctr_7d", "price"))}


def test_columns_are_the_stored_inputs_of_the_levels_on_demand_features_expanded() -> None:
    columns = snapshot_columns(["price_z_in_category", "ctr_7d"])
    assert set(columns) == {"price", "category_log_price_mean", "category_log_price_std", "ctr_7d"}
    stored = [n for e in ("item", "seller", "category") for n in registry.stored_names(e)]
    assert columns == [n for n in stored if n in columns], "registry order"
    rule_only = for_fallback_levels(10, [])
    assert rule_only is not None and set(rule_only.columns) == set(snapshot_columns(RULE_INPUTS))
    assert for_fallback_levels(0, ["price"]) is None, "serving.snapshot_items = 0 turns it off"


def test_fill_returns_the_last_values_read_and_defaults_for_items_it_never_saw() -> None:
    snapshot = ItemSnapshot(["ctr_7d", "price"], capacity=10)
    ids = ["a", "b", "c"]
    snapshot.observe(ids, _columns(ids, 1.0), np.array([True, True, False]))  # c was missing in the store
    snapshot.observe(["b"], _columns(["b"], 50.0), np.array([True]))  # a newer read replaces b's row
    assert len(snapshot) == 2
    filled = snapshot.fill(["a", "b", "c"], ["price", "impressions_7d"])
    assert filled is not None
    columns, covered = filled
    assert covered == 2 and set(columns) == {"price"}, "only what it holds"
    assert columns["price"].tolist() == [1.1, 50.1, registry.feature("price").default]


def test_a_snapshot_covering_under_half_the_candidates_stands_in_for_nothing() -> None:
    snapshot = ItemSnapshot(["ctr_7d", "price"], capacity=10)
    snapshot.observe(["a"], _columns(["a"], 1.0), np.array([True]))
    assert snapshot.fill(["a", "x", "y"], ["ctr_7d"]) is None
    assert snapshot.fill(["a", "x"], ["ctr_7d"]) is not None
    assert ItemSnapshot(["ctr_7d"], 10).fill(["a"], ["ctr_7d"]) is None, "cold"


def test_it_never_holds_more_than_its_capacity_and_replaces_the_oldest_first() -> None:
    snapshot = ItemSnapshot(["ctr_7d", "price"], capacity=3)
    for k in range(5):
        snapshot.observe([f"i-{k}"], _columns([f"i-{k}"], float(k)), np.array([True]))
    assert len(snapshot) == 3
    assert snapshot.fill(["i-0"], ["ctr_7d"]) is None and snapshot.fill(["i-1"], ["ctr_7d"]) is None
    filled = snapshot.fill(["i-2", "i-3", "i-4"], ["ctr_7d"])
    assert filled is not None and filled[0]["ctr_7d"].tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="at least 1 item"):
        ItemSnapshot(["ctr_7d"], 0)


def test_a_seed_fills_free_slots_only_and_never_replaces_what_traffic_put_there() -> None:
    snapshot = ItemSnapshot(["ctr_7d", "price"], capacity=3)
    snapshot.observe(["a"], _columns(["a"], 100.0), np.array([True]))
    ids = ["a", "b", "c", "d"]
    assert snapshot.seed(ids, _columns(ids, 1.0)) == 2, "b and c: a is held, d finds the snapshot full"
    filled = snapshot.fill(ids, ["price"])
    assert filled is not None
    assert filled[0]["price"].tolist() == [100.1, 2.1, 3.1, registry.feature("price").default]
    assert snapshot.seed(["e"], _columns(["e"], 1.0)) == 0 and len(snapshot) == 3, "a seed never evicts"
