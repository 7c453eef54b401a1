"""Bring your own logs: a hand-made CSV with the usual problems goes through
``rankops ingest``; good rows land in the raw layer, bad rows are quarantined with
a reason, missing optional columns are reported, and the feature job runs on it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rankops.cli import main
from rankops.errors import DataError
from rankops.features import offline
from rankops.ingest import ingest, load_mapping

EVENTS = """session,when,listing,rank,click,lead,visitor,search_cat
s1,2026-11-02T10:05:00Z,L1,1,1,1,v1,toys
s1,2026-11-02T10:05:00Z,L2,2,0,0,v1,toys
s1,2026-11-02T10:05:00Z,L3,3,0,0,v1,toys
s2,2026-11-02T11:30:00Z,L2,1,yes,no,v2,books
s2,2026-11-02T11:30:00Z,L1,2,no,no,v2,books
s3,2026-11-02T11:45:00Z,L9,1,true,false,v3,toys
s3,not-a-time,L1,2,0,0,v3,toys
s3,2026-11-02T11:45:00Z,,3,0,0,v3,toys
s3,2026-11-02T11:45:00Z,L2,x,0,0,v3,toys
s3,2026-11-02T11:45:00Z,L3,4,maybe,0,v3,toys
s3,2026-11-02T11:45:00Z,L3,5,0,1,v3,toys
"""
LISTINGS = """id,seller,cat,amount,img,listed
L1,S1,toys,10.5,0.9,2026-10-01T00:00:00Z
L2,S1,toys,20,0.4,2026-10-15T00:00:00Z
L3,S2,books,-3,0.5,2026-10-20T00:00:00Z
L2,S1,toys,25,0.4,2026-10-15T00:00:00Z
"""
MAPPING = """events:
  columns: {ts: when, request_id: session, item_id: listing, position: rank, clicked: click,
            contacted: lead, user_id: visitor, query_category: search_cat, device: platform}
items:
  source: listings.csv
  columns: {item_id: id, seller_id: seller, category: cat, price: amount, image_quality: img, created_at: listed}
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "clicks.csv").write_text(EVENTS)
    (tmp_path / "listings.csv").write_text(LISTINGS)
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    return tmp_path


def test_good_rows_land_bad_rows_are_quarantined_with_a_reason(files, lake) -> None:  # type: ignore[no-untyped-def]
    report = ingest(lake, files / "clicks.csv", load_mapping(files / "mapping.yaml"))
    assert report.events_read == 11
    assert report.events_quarantined == {
        "ts is not a time": 1,
        "missing item_id": 1,
        "position is not an integer >= 1": 1,
        "clicked is not a boolean": 1,
        "contacted without a click": 1,
    }
    assert report.events_written == 6 == lake.read("raw", "events").num_rows
    assert report.missing_optional_columns == {"events": ["device", "revenue"]}
    quarantined = lake.read("raw", "quarantine/events").to_pylist()
    assert len(quarantined) == 5
    assert {r["reason"] for r in quarantined} >= {"missing item_id", "contacted without a click"}
    assert any(r["ts"] == "not-a-time" for r in quarantined), "quarantined rows keep their original values"

    assert report.items_quarantined == {"price is not a number >= 0": 1, "duplicate item_id": 1}
    assert report.items_derived_from_events == 2, "L9 only appears in events; L3 was quarantined"
    items = {r["item_id"]: r for r in lake.read("raw", "items").to_pylist()}
    assert set(items) == {"L1", "L2", "L3", "L9"}
    assert items["L2"]["price"] == 20.0 and items["L1"]["seller_id"] == "S1"
    assert items["L9"]["created_at"].isoformat().startswith("2026-11-02T11:45"), "first seen"
    events = lake.read("raw", "events").to_pylist()
    assert {(e["request_id"], e["item_id"], e["position"], e["clicked"], e["contacted"]) for e in events} >= {
        ("s1", "L1", 1, True, True),
        ("s2", "L2", 1, True, False),
    }
    assert {p.values["hour"] for p in lake.partitions("raw", "events")} == {"10", "11"}


def test_the_feature_job_runs_unchanged_on_ingested_logs(files, lake, settings, spark) -> None:  # type: ignore[no-untyped-def]
    ingest(lake, files / "clicks.csv", load_mapping(files / "mapping.yaml"))
    offline.build(spark, lake, settings)
    items = {r["item_id"]: r for r in offline.latest_values(lake, settings, "item").to_pylist()}
    assert (items["L1"]["impressions_7d"], items["L2"]["impressions_7d"], items["L3"]["impressions_7d"]) == (2, 2, 1)
    assert items["L1"]["ctr_7d"] > items["L3"]["ctr_7d"]
    sellers = {r["seller_id"]: r for r in offline.latest_values(lake, settings, "seller").to_pylist()}
    assert sellers["S1"]["seller_item_count"] == 2


def test_mapping_errors_name_the_problem(files, tmp_path, lake) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  columns: {ts: when, item_id: listing}\n")
    with pytest.raises(DataError, match=r"required event columns \['request_id', 'position', 'clicked'\]"):
        load_mapping(bad)
    bad.write_text("events:\n  columns: {ts: when, request_id: s, item_id: l, position: p, clicked: c, colour: x}\n")
    with pytest.raises(DataError, match="colour"):
        load_mapping(bad)
    (tmp_path / "m.yaml").write_text(MAPPING.replace("item_id: listing", "item_id: item"))
    with pytest.raises(
        DataError, match=re.escape("required events columns missing from the file: {'item_id': 'item'}")
    ):
        ingest(lake, files / "clicks.csv", load_mapping(tmp_path / "m.yaml"))
    assert not lake.partitions("raw", "events"), "nothing was written"


def test_cli_prints_the_report(files, home, capsys) -> None:  # type: ignore[no-untyped-def]
    logs = files / "logs"
    logs.mkdir()
    (logs / "part-1.csv").write_text(EVENTS)
    (logs / "part-2.csv").write_text(EVENTS.splitlines()[0] + "\ns9,2026-11-02T12:00:00Z,L1,1,0,0,v9,toys\n")
    code = main(["--home", str(home), "ingest", "--source", str(logs), "--mapping", str(files / "mapping.yaml")])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["events_written"] == 7 and report["files"] == [str(logs / "part-1.csv"), str(logs / "part-2.csv")]
