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
from rankops.lake import Lake
from tests.conftest import make_settings

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


# -- running ingest more than once: merge, never lose or duplicate -----------------------------
HEADER = EVENTS.splitlines()[0]
PLAIN_MAPPING = """events:
  columns: {ts: when, request_id: session, item_id: listing, position: rank, clicked: click,
            contacted: lead, user_id: visitor, query_category: search_cat}
items:
  columns: {item_id: id, seller_id: seller, cat: cat, price: amount, image_quality: img, created_at: listed}
""".replace("cat: cat", "category: cat")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def events_by_key(lake) -> dict[tuple[str, str, int], dict]:  # type: ignore[no-untyped-def,type-arg]
    rows = lake.read("raw", "events").to_pylist()
    keys = [(r["request_id"], r["item_id"], r["position"]) for r in rows]
    assert len(keys) == len(set(keys)), "an event is stored once"
    return dict(zip(keys, rows, strict=True))


def catalog(lake) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    rows = lake.read("raw", "items").to_pylist()
    ids = [r["item_id"] for r in rows]
    assert len(ids) == len(set(ids)), f"a listing is stored once: {sorted(ids)}"
    return {r["item_id"]: r for r in rows}


def test_a_second_log_of_the_same_hour_keeps_the_first_logs_events(tmp_path, lake) -> None:  # type: ignore[no-untyped-def]
    mapping = load_mapping(write(tmp_path, "m.yaml", PLAIN_MAPPING))
    first = HEADER + "\ns1,2026-11-02T10:05:00Z,L1,1,1,0,v1,toys\ns1,2026-11-02T10:05:00Z,L2,2,0,0,v1,toys\n"
    ingest(lake, write(tmp_path, "a.csv", first), mapping)
    second = HEADER + "\ns2,2026-11-02T10:50:00Z,L3,1,0,0,v2,toys\n"
    report = ingest(lake, write(tmp_path, "b.csv", second), mapping)
    assert report.events_written == 1 and report.events_duplicates == 0
    assert set(events_by_key(lake)) == {("s1", "L1", 1), ("s1", "L2", 2), ("s2", "L3", 1)}
    assert [p.rows for p in lake.partitions("raw", "events")] == [3], "one hour, merged"

    again = ingest(lake, write(tmp_path, "c.csv", first), mapping)
    assert (again.events_written, again.events_duplicates, again.partitions) == (0, 2, 0), "re-ingesting is a no-op"
    assert len(events_by_key(lake)) == 3

    changed = HEADER + "\ns1,2026-11-02T10:05:00Z,L1,1,0,0,v1,toys\ns9,2026-11-02T10:07:00Z,L1,1,0,0,v1,toys\n"
    changed += "s9,2026-11-02T10:07:00Z,L1,1,0,0,v1,toys\ns9,2026-11-02T10:07:00Z,L1,1,1,0,v1,toys\n"
    clash = ingest(lake, write(tmp_path, "d.csv", changed), mapping)
    assert clash.events_quarantined == {
        "same request_id, item_id and position as a stored event with different values": 1,
        "same request_id, item_id and position as an earlier row with different values": 1,
    }
    assert (clash.events_written, clash.events_duplicates) == (1, 1), "s9 is new; its exact repeat is kept once"
    assert events_by_key(lake)[("s1", "L1", 1)]["clicked"] is True, "the stored event is kept"
    quarantined = lake.read("raw", "quarantine/events").to_pylist()
    assert sorted((r["request_id"], r["clicked"]) for r in quarantined) == [("s1", "False"), ("s9", "True")]


def test_a_side_table_of_new_listings_keeps_earlier_listings_of_the_same_day(tmp_path, lake) -> None:  # type: ignore[no-untyped-def]
    mapping = load_mapping(write(tmp_path, "m.yaml", PLAIN_MAPPING))
    log = write(tmp_path, "log.csv", HEADER + "\ns1,2026-11-02T10:05:00Z,L1,1,1,0,v1,toys\n")
    old = "id,seller,cat,amount,img,listed\nL1,S1,toys,10,0.9,2026-10-01T08:00:00Z\n"
    old += "L2,S1,toys,20,0.4,2026-10-01T09:00:00Z\n"
    ingest(lake, log, mapping, write(tmp_path, "old.csv", old))
    new = "id,seller,cat,amount,img,listed\nL5,S2,books,7,0.7,2026-10-01T12:00:00Z\n"
    report = ingest(lake, log, mapping, write(tmp_path, "new.csv", new))
    assert (report.items_new, report.items_updated, report.items_written) == (1, 0, 1)
    items = catalog(lake)
    assert set(items) == {"L1", "L2", "L5"}
    assert [p.rows for p in lake.partitions("raw", "items")] == [3]

    # The side table may update a stored listing: its values win, an empty value keeps the stored one.
    update = "id,seller,cat,amount,img,listed\nL2,S7,,25,,\nL1,S1,toys,10,0.9,2026-10-01T08:00:00Z\n"
    report = ingest(lake, log, mapping, write(tmp_path, "update.csv", update))
    assert (report.items_new, report.items_updated, report.items_unchanged) == (0, 1, 1)
    l2 = catalog(lake)["L2"]
    assert (l2["seller_id"], l2["category"], l2["price"], l2["image_quality"]) == ("S7", "toys", 25.0, 0.4)
    assert l2["created_at"].isoformat().startswith("2026-10-01T09:00")


def test_a_listing_without_creation_time_gets_one_catalog_row_however_often_it_is_shown(tmp_path, lake) -> None:  # type: ignore[no-untyped-def]
    mapping = load_mapping(write(tmp_path, "m.yaml", PLAIN_MAPPING.split("items:")[0]))
    day1 = HEADER + "\ns1,2026-11-02T10:05:00Z,L9,1,1,0,v1,toys\n"
    day2 = HEADER + "\ns2,2026-11-03T10:05:00Z,L9,1,0,0,v1,toys\ns3,2026-11-01T23:00:00Z,L9,2,0,0,v1,toys\n"
    assert ingest(lake, write(tmp_path, "a.csv", day1), mapping).items_derived_from_events == 1
    report = ingest(lake, write(tmp_path, "b.csv", day2), mapping)
    assert report.items_derived_from_events == 0 and report.items_new == 0
    assert report.items_updated == 1, "shown before its stored creation: moved earlier"
    items = catalog(lake)
    assert list(items) == ["L9"] and items["L9"]["created_at"].isoformat().startswith("2026-11-01T23:00")
    assert {p.values["dt"]: p.rows for p in lake.partitions("raw", "items")} == {"2026-11-01": 1, "2026-11-02": 0}
    assert ingest(lake, write(tmp_path, "c.csv", day2), mapping).partitions == 0, "nothing new"
    assert len(catalog(lake)) == 1


def test_an_item_listed_twice_in_one_run_is_quarantined_even_across_files(tmp_path, lake, settings, spark) -> None:  # type: ignore[no-untyped-def]
    mapping = load_mapping(write(tmp_path, "m.yaml", PLAIN_MAPPING))
    side = tmp_path / "side"
    side.mkdir()
    write(side, "a.csv", "id,seller,cat,amount,img,listed\nL1,S1,toys,10,0.9,2026-10-01T00:00:00Z\n")
    write(side, "b.csv", "id,seller,cat,amount,img,listed\nL1,S2,toys,10,0.9,2026-10-01T00:00:00Z\n")
    log = HEADER + "\ns1,2026-11-02T10:05:00Z,L1,1,1,0,v1,toys\n"
    report = ingest(lake, write(tmp_path, "log.csv", log), mapping, side)
    assert report.items_quarantined == {"duplicate item_id": 1}
    assert catalog(lake)["L1"]["seller_id"] == "S1", "the first file's row stands"
    quarantined = lake.read("raw", "quarantine/items").to_pylist()
    assert [(r["item_id"], r["seller_id"], r["reason"]) for r in quarantined] == [("L1", "S2", "duplicate item_id")]

    offline.build(spark, lake, settings)
    sellers = {r["seller_id"]: r for r in offline.latest_values(lake, settings, "seller").to_pylist()}
    assert set(sellers) == {"S1"}, "L1's click counts for its one seller"
    assert sellers["S1"]["seller_item_count"] == 1


# -- malformed input ---------------------------------------------------------------------------
def test_a_csv_row_with_the_wrong_number_of_fields_is_quarantined(tmp_path, lake) -> None:  # type: ignore[no-untyped-def]
    mapping = load_mapping(write(tmp_path, "m.yaml", PLAIN_MAPPING.split("items:")[0]))
    text = HEADER + "\ns1,2026-11-02T10:05:00Z,L1,1,1,0,v1,toys,EXTRA\ns1,2026-11-02T10:05:00Z,L2,2,0,0,v1,toys\ns2,x\n"
    report = ingest(lake, write(tmp_path, "log.csv", text), mapping)
    assert report.events_read == 3 and report.events_written == 1
    assert report.events_quarantined == {"malformed CSV row (wrong number of fields)": 2}
    quarantined = lake.read("raw", "quarantine/events").to_pylist()
    assert sorted(r["raw_line"] for r in quarantined) == ["s1,2026-11-02T10:05:00Z,L1,1,1,0,v1,toys,EXTRA", "s2,x"]
    assert {r["source_file"] for r in quarantined} == {str(tmp_path / "log.csv")}


def test_an_unreadable_file_is_one_line_naming_it_and_nothing_is_written(tmp_path, home, capsys) -> None:  # type: ignore[no-untyped-def]
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs, "a.csv", HEADER + "\ns1,2026-11-02T10:05:00Z,L1,1,1,0,v1,toys\n")
    (logs / "b.parquet").write_bytes(b"this is not parquet")
    mapping = write(tmp_path, "m.yaml", PLAIN_MAPPING.split("items:")[0])
    code = main(["--home", str(home), "ingest", "--source", str(logs), "--mapping", str(mapping)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"rankops: error: {logs / 'b.parquet'}: cannot read it as parquet")
    lake = Lake.from_settings(make_settings(home))
    assert not lake.partitions("raw", "events") and not lake.partitions("raw", "quarantine/events")

    (logs / "b.parquet").unlink()
    (logs / "c.csv").write_bytes(HEADER.encode() + b"\ns2,2026-11-02T10:05:00Z,\xff\xfe,1,1,0,v1,toys\n")
    assert main(["--home", str(home), "ingest", "--source", str(logs), "--mapping", str(mapping)]) == 2
    assert f"{logs / 'c.csv'}: cannot read it as csv" in capsys.readouterr().err
    assert main(["--home", str(home), "ingest", "--source", str(logs / "a.csv"), "--mapping", str(mapping),
                 "--items", str(tmp_path / "nope.csv")]) == 2  # fmt: skip
    assert f"--items {tmp_path / 'nope.csv'} does not exist" in capsys.readouterr().err


def test_a_listing_with_no_creation_time_that_was_never_shown_is_quarantined(tmp_path, lake) -> None:  # type: ignore[no-untyped-def]
    mapping = load_mapping(write(tmp_path, "m.yaml", PLAIN_MAPPING))
    log = write(tmp_path, "log.csv", HEADER + "\ns1,2026-11-02T10:05:00Z,L1,1,1,0,v1,toys\n")
    side = write(tmp_path, "side.csv", "id,seller,cat,amount,img,listed\nL1,S1,toys,10,0.9,\nL4,S1,toys,5,0.2,\n")
    report = ingest(lake, log, mapping, side)
    assert report.items_unusable == 1 and report.items_quarantined == {"no created_at and never shown": 1}
    assert set(catalog(lake)) == {"L1"}
    quarantined = lake.read("raw", "quarantine/items").to_pylist()
    assert [(r["item_id"], r["reason"]) for r in quarantined] == [("L4", "no created_at and never shown")]
