"""``offline.latest_values``: each key's newest published row at or before a time, read from
an offline store with history (several runs per key over several day partitions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from rankops.features import offline, registry
from rankops.lake import Lake
from tests.conftest import make_settings

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def publish(lake, settings, rows: list[tuple[str, datetime, float]], through: datetime) -> None:  # type: ignore[no-untyped-def]
    """Category rows ``(key, feature_ts, category_ctr_7d)``, one partition per UTC day."""
    names = registry.stored_names("category")
    by_day: dict[str, list[tuple[str, datetime, float]]] = {}
    for row in rows:
        by_day.setdefault(row[1].strftime("%Y-%m-%d"), []).append(row)
    for day, part in by_day.items():
        cols = {
            "category": [r[0] for r in part],
            "feature_ts": pa.array([r[1] for r in part], pa.timestamp("us", tz="UTC")),
            **{n: [r[2] if n == "category_ctr_7d" else 1.0 for r in part] for n in names},
        }
        lake.write_partition("features", offline.dataset_name(settings, "category"), {"dt": day}, pa.table(cols))
    lake.write_json(offline.manifest_uri(lake, settings), {"published_through": through.isoformat()})


def test_latest_values_pick_each_keys_newest_row_up_to_the_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "home")
    lake = Lake.from_settings(settings)
    day = timedelta(days=1)
    rows = [
        ("toys", T0 + timedelta(hours=1), 0.1),
        ("toys", T0 + 2 * day, 0.3),  # newest toys row
        ("toys", T0 + timedelta(hours=5), 0.2),
        ("books", T0, 0.5),  # only row, in the oldest partition
        ("home", T0 + day, 0.6),
        ("home", T0 + 3 * day, 0.9),  # after the published end: never served
    ]
    publish(lake, settings, rows, through=T0 + 2 * day)
    latest = offline.latest_values(lake, settings, "category")
    assert latest["category"].to_pylist() == ["books", "home", "toys"], "one row per key, sorted by key"
    assert latest["category_ctr_7d"].to_pylist() == [0.5, 0.6, 0.3]
    assert latest.column_names == ["category", "feature_ts", *registry.stored_names("category")]

    earlier = offline.latest_values(lake, settings, "category", before=T0 + timedelta(hours=4))
    assert earlier.to_pydict()["category_ctr_7d"] == [0.5, 0.1]
    assert offline.latest_values(lake, settings, "category", before=T0 - day).num_rows == 0
