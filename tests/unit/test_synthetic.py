from datetime import date

import numpy as np
import pyarrow.compute as pc
import pytest

from rankops.errors import DataError
from rankops.synthetic import EVENTS_SCHEMA, ITEMS_SCHEMA, MarketplaceSpec, generate, write_marketplace

SPEC = MarketplaceSpec(events=20_000, days=2, seed=3, start=date(2026, 11, 1))


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return generate(SPEC)


def test_same_seed_same_data_other_seed_other_data(market) -> None:  # type: ignore[no-untyped-def]
    again = generate(SPEC)
    assert market.events.equals(again.events) and market.items.equals(again.items)
    other = generate(MarketplaceSpec(events=20_000, days=2, seed=4, start=date(2026, 11, 1)))
    assert not market.events.equals(other.events)


def test_schema_and_size(market) -> None:  # type: ignore[no-untyped-def]
    assert market.events.schema == EVENTS_SCHEMA and market.items.schema == ITEMS_SCHEMA
    assert 0.99 * SPEC.events <= market.events.num_rows <= SPEC.events
    ts = market.events["ts"].cast("int64").to_numpy()
    assert ts.min() >= SPEC.start_ms and ts.max() < SPEC.end_ms
    assert np.all(np.diff(ts) >= 0), "events are in time order"


def test_slates_are_ranked_lists_without_duplicates(market) -> None:  # type: ignore[no-untyped-def]
    frame = market.events.select(["request_id", "item_id", "position"]).to_pandas()
    sizes = frame.groupby("request_id").size()
    assert sizes.between(1, SPEC.slate_max).all() and sizes.median() >= SPEC.slate_min
    assert not frame.duplicated(["request_id", "item_id"]).any()
    positions = frame.groupby("request_id")["position"].agg(["min", "max", "count"])
    assert (positions["min"] == 1).all() and (positions["max"] == positions["count"]).all()


def test_only_existing_items_are_shown(market) -> None:  # type: ignore[no-untyped-def]
    items = market.items.to_pandas().set_index("item_id")
    events = market.events.to_pandas()
    created = events["item_id"].map(items["created_at"])
    assert (created <= events["ts"]).all()


def test_outcomes_are_nested_and_position_biased(market) -> None:  # type: ignore[no-untyped-def]
    e = market.events.to_pandas()
    assert (e["contacted"] <= e["clicked"]).all()
    assert ((e["revenue"] > 0) <= e["contacted"]).all()
    ctr = e.groupby("position")["clicked"].mean()
    assert ctr.loc[1] > 1.5 * ctr.loc[10], "top positions get clicked more (position bias)"
    assert 0.01 < e["clicked"].mean() < 0.3


def test_hidden_quality_drives_clicks(market) -> None:  # type: ignore[no-untyped-def]
    """The ground truth is learnable: better items get more clicks per impression."""
    e = market.events.to_pandas()
    idx = e["item_id"].str[2:].astype(int).to_numpy()
    quality = market.item_quality[idx]
    assert e["clicked"][quality > 1].mean() > 1.5 * e["clicked"][quality < -1].mean()


def test_written_partitions_are_hourly_and_complete(lake) -> None:  # type: ignore[no-untyped-def]
    summary = write_marketplace(lake, generate(SPEC))
    parts = lake.partitions("raw", "events")
    assert {tuple(p.values) for p in parts} == {("dt", "hour")}
    assert sum(p.rows for p in parts) == summary["events"]
    back = lake.read("raw", "events")
    assert pc.all(pc.equal(pc.strftime(back["ts"], "%H"), back["hour"])).as_py()
    assert lake.read("raw", "items").num_rows == summary["items"]
    assert lake.read_json(lake.uri("raw", "_meta", "synthetic.json"))["summary"] == summary


def test_bad_specs_are_rejected() -> None:
    with pytest.raises(DataError, match="--events must be at least"):
        MarketplaceSpec(events=5, days=1, seed=1, start=date(2026, 1, 1))
    with pytest.raises(DataError, match="--days must be between 1 and 366, got 0"):
        MarketplaceSpec(events=1000, days=0, seed=1, start=date(2026, 1, 1))


def test_a_second_marketplace_is_refused_or_replaces_the_first(lake) -> None:  # type: ignore[no-untyped-def]
    small = MarketplaceSpec(events=2_000, days=1, seed=1, start=date(2026, 11, 1))
    write_marketplace(lake, generate(small), run_id="first")
    with pytest.raises(DataError, match=r"already holds .* pass --replace"):
        write_marketplace(lake, generate(small), run_id="second")
    assert {p.run_id for p in lake.partitions("raw", "events")} == {"first"}

    later = MarketplaceSpec(events=3_000, days=2, seed=2, start=date(2026, 11, 2))
    summary = write_marketplace(lake, generate(later), run_id="second", replace=True)
    for dataset in ("events", "items"):
        assert {p.run_id for p in lake.partitions("raw", dataset)} == {"second"}
    assert lake.read("raw", "events").num_rows == summary["events"] == 3_000
    items = lake.read("raw", "items")["item_id"].to_pylist()
    assert len(items) == len(set(items)) == summary["items"]


def test_spec_limits_are_checked_before_anything_is_generated() -> None:
    with pytest.raises(DataError, match="--seed must be a non-negative integer"):
        MarketplaceSpec(events=1000, days=1, seed=-1, start=date(2026, 1, 1))
    with pytest.raises(DataError, match="--days must be between 1 and 366"):
        MarketplaceSpec(events=1000, days=10_000_000, seed=1, start=date(2026, 1, 1))
    with pytest.raises(DataError, match="ends after 9999-12-31"):
        MarketplaceSpec(events=1000, days=5, seed=1, start=date(9999, 12, 30))
    with pytest.raises(DataError, match="too early"):
        MarketplaceSpec(events=1000, days=5, seed=1, start=date(1970, 1, 2))
    assert MarketplaceSpec(events=1000, days=1, seed=0, start=date(9999, 12, 30)).days == 1
