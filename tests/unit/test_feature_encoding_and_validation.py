"""Pure parts of the feature factory: the shared value encoding, the validation rules,
the run windows and the registry's invariants."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from rankops.errors import DataError
from rankops.features import registry, validation
from rankops.features.offline import TimeWindow
from rankops.features.online.packing import pack_rows, unpack_rows
from rankops.features.settings import FeaturesConfig


def test_values_round_trip_with_join_keys_and_stale_versions_read_as_missing() -> None:
    values = np.array([[1.5, np.nan], [-2.0, 1e300]])
    payloads = pack_rows("v1", values, [["s-1", "toys"], [None, "books"]])
    matrix, found, joins = unpack_rows([payloads[0], None, payloads[1]], 2, np.array([7.0, 8.0]), "v1", 2)
    assert found.tolist() == [True, False, True]
    assert np.array_equal(matrix, [[1.5, np.nan], [7.0, 8.0], [-2.0, 1e300]], equal_nan=True)
    assert joins == [["s-1", None, None], ["toys", None, "books"]]
    stale, found, _ = unpack_rows(payloads, 2, np.array([7.0, 8.0]), "v2")
    assert not found.any() and stale.tolist() == [[7.0, 8.0], [7.0, 8.0]], "another version's value is not served"


def test_values_without_join_keys_decode_alike_on_the_fixed_width_path() -> None:
    """Values of one width (items with their joined entities inlined) take a column-wise path: it
    gives what the general path gives, for missing, empty, stale and wrongly sized values too."""
    values = np.array([[1.5, np.nan], [-2.0, 1e300], [0.0, -0.0], [3.0, 4.0]])
    good = pack_rows("v1", values)
    mixed = [good[0], None, b"", pack_rows("v0", values[:1])[0], good[3]]
    matrix, found, _ = unpack_rows(mixed, 2, np.array([7.0, 8.0]), "v1")
    assert found.tolist() == [True, False, False, False, True]
    assert np.array_equal(matrix, [[1.5, np.nan], [7, 8], [7, 8], [7, 8], [3.0, 4.0]], equal_nan=True)
    assert np.signbit(unpack_rows(good, 2, np.zeros(2), "v1")[0][2, 1]), "bits are kept (-0.0)"
    keyed = pack_rows("v1", values[:2], [["s-1"], ["s-22"]])  # longer values: the general path
    matrix, found, _ = unpack_rows([keyed[0], good[1], None], 2, np.array([7.0, 8.0]), "v1")
    assert found.tolist() == [True, True, False] and matrix[1, 0] == -2.0
    keys = [["s-1", "toys"], [None, "books"], ["s-3", None], ["s-4", "x"]]  # every value present: one split
    matrix, found, joins = unpack_rows(pack_rows("v1", values, keys), 2, np.array([7.0, 8.0]), "v1", 2)
    assert found.all() and np.array_equal(matrix, values, equal_nan=True)
    assert joins == [["s-1", None, "s-3", "s-4"], ["toys", "books", None, "x"]]
    full = [["s-1", "toys"], ["s-2", "books"]]  # no unknown key
    decoded = unpack_rows(pack_rows("v1", values[:2], full), 2, np.zeros(2), "v1", 2)[2]
    assert decoded == [["s-1", "s-2"], ["toys", "books"]]


def stats(rows: int, **feature: dict[str, float]) -> dict:  # type: ignore[type-arg]
    base = {"nulls": 0, "nans": 0, "defaults": 0, "outside": 0, "min": 0.0, "max": 1.0}
    features = {n: {**base, **feature.get(n, {})} for n in registry.stored_names("seller")}
    return {"rows": rows, "schema": validation.expected_schema("seller"), "features": features}


def test_validation_names_every_broken_rule() -> None:
    cfg = FeaturesConfig(max_default_rate={"seller_ctr_30d": 0.5})
    report = validation.Report()
    broken = stats(
        100,
        seller_avg_contact_rate={"nulls": 5, "outside": 2},
        seller_ctr_30d={"defaults": 80},
    )
    broken["schema"] = {**broken["schema"], "seller_item_count": "string"}
    validation.evaluate("seller", broken, cfg, previous_rows=400, freshness_lag_s=30 * 3600, report=report)
    failed = {c.name for c in report.failures}
    assert failed == {
        "schema",
        "seller_avg_contact_rate.null_rate",
        "seller_avg_contact_rate.range",
        "seller_ctr_30d.default_rate",
        "row_count_change",
        "freshness",
    }
    assert "seller_item_count: expected double, got string" in report.summary()


def test_validation_passes_clean_stats_and_skips_what_it_cannot_compare() -> None:
    report = validation.Report()
    validation.evaluate("seller", stats(100), FeaturesConfig(), None, 600.0, report)
    assert report.ok, report.summary()
    assert any(c.name == "row_count_change" and "no comparable" in c.detail for c in report.checks)


def test_windows_are_hour_aligned_and_compared_by_length_and_hour_of_day() -> None:
    start = datetime(2026, 11, 3, 5, tzinfo=UTC)
    assert TimeWindow(start, start.replace(hour=6)).comparable_key() == "1h@05"
    assert TimeWindow(start, start.replace(day=5)).comparable_key() == "48h"
    with pytest.raises(DataError, match="not on the hour"):
        TimeWindow(start.replace(minute=30), start.replace(hour=6))
    with pytest.raises(DataError, match="empty window"):
        TimeWindow(start, start)


def test_registry_declares_each_stored_feature_with_a_computation_and_the_version_tracks_it() -> None:
    for entity in registry.stored_entities():
        for f in registry.stored_features(entity):
            assert f.compute is not None, f.name
            assert (f.window is not None) == isinstance(f.compute, registry.WindowSum | registry.SmoothedRatio)
    for f in registry.on_demand_features():
        assert all(registry.feature(i).kind != "on_demand" for i in f.inputs)
    assert registry.join_keys("item") == ["seller_id", "category"]
    assert registry.feature_set_version({"a": 1}) != registry.feature_set_version({"a": 2})


def test_run_windows_come_from_the_committed_partitions(lake) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from rankops.errors import LakeError
    from rankops.features.offline import resolve_window

    with pytest.raises(LakeError, match="no committed events"):
        resolve_window(lake)
    one = pa.table({"x": [1]})
    lake.write_partition("raw", "events", {"dt": "2026-11-02", "hour": "07"}, one)
    lake.write_partition("raw", "events", {"dt": "2026-11-03", "hour": "22"}, one)
    lake.write_partition("raw", "items", {"dt": "2026-10-30"}, one)
    backfill = resolve_window(lake)
    assert backfill.backfill
    assert (backfill.start, backfill.end) == (
        datetime(2026, 10, 29, 23, tzinfo=UTC),
        datetime(2026, 11, 3, 23, tzinfo=UTC),
    )
    hourly = resolve_window(lake, hours_back=2, now=datetime(2026, 11, 3, 14, 25, tzinfo=UTC))
    assert (hourly.start.hour, hourly.end.hour, hourly.backfill) == (12, 14, False)
    with pytest.raises(DataError, match="either --start or --hours-back"):
        resolve_window(lake, start=backfill.start, hours_back=1)


def test_default_rates_have_a_limit_for_every_feature_and_published_nans_count_as_nulls() -> None:
    report = validation.Report()
    checked = stats(100, seller_ctr_30d={"defaults": 51}, seller_item_count={"nans": 2})
    validation.evaluate("seller", checked, FeaturesConfig(), None, 600.0, report)
    assert {c.name for c in report.failures} == {"seller_ctr_30d.default_rate", "seller_item_count.null_rate"}
    assert "51 of 100 rows had no value and got the default 0.1" in report.summary()
    report = validation.Report()
    cfg = FeaturesConfig(max_default_rate={"seller_ctr_30d": 0.6}, max_null_rate=0.05)
    validation.evaluate("seller", checked, cfg, None, 600.0, report)
    assert report.ok, report.summary()


def test_default_rate_limits_must_name_stored_features() -> None:
    with pytest.raises(ValueError, match=r"max_default_rate names \['image_score'\], not stored features"):
        FeaturesConfig(max_default_rate={"image_score": 1.0})
    with pytest.raises(ValueError, match="within"):
        FeaturesConfig(max_default_rate={"price": 2.0})
