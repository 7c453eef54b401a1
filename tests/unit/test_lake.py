import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rankops.errors import LakeError
from rankops.lake import MANIFEST, ZONES, Lake
from rankops.lake_writers import LEASE, RETIRED, file_lease
from tests.lake_concurrency import WRITES, final_write, two_writers_and_a_reader


class Clock:
    """A hand-moved clock: deletion after the grace period without waiting for it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_lake(root: Path, retire_after_s: float = 0.0, clock: Clock | None = None) -> Lake:
    return Lake({z: str(root / z) for z in ZONES}, retire_after_s=retire_after_s, clock=clock or Clock())


def table(n: int, start: int = 0) -> pa.Table:
    return pa.table({"x": list(range(start, start + n))})


def test_partition_round_trip_with_partition_columns(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    lake.write_partition("raw", "events", {"dt": "2026-11-01", "hour": "00"}, table(3))
    lake.write_partition("raw", "events", {"dt": "2026-11-01", "hour": "01"}, table(2, 10))
    got = lake.read("raw", "events").sort_by("x")
    assert got["x"].to_pylist() == [0, 1, 2, 10, 11]
    assert got["hour"].to_pylist() == ["00", "00", "00", "01", "01"]
    assert [p.values for p in lake.partitions("raw", "events")] == [
        {"dt": "2026-11-01", "hour": "00"},
        {"dt": "2026-11-01", "hour": "01"},
    ]


def test_files_without_a_manifest_are_invisible(tmp_path: Path) -> None:
    """A crash after writing data but before the manifest leaves nothing readable."""
    lake = make_lake(tmp_path)
    folder = tmp_path / "raw" / "events" / "dt=2026-11-01" / "hour=00"
    folder.mkdir(parents=True)
    pq.write_table(table(5), folder / "part-crashed-00000.parquet")
    assert lake.partitions("raw", "events") == []
    with pytest.raises(LakeError, match="no committed partitions"):
        lake.read("raw", "events")


def test_rewrite_replaces_atomically_and_collects_old_files_after_the_grace_period(tmp_path: Path) -> None:
    clock = Clock()
    lake = make_lake(tmp_path, retire_after_s=600, clock=clock)
    first = lake.write_partition("raw", "events", {"dt": "2026-11-01"}, table(3), run_id="run-a")
    second = lake.write_partition("raw", "events", {"dt": "2026-11-01"}, table(4, 100), run_id="run-b")
    assert lake.read("raw", "events")["x"].to_pylist() == [100, 101, 102, 103]
    folder = tmp_path / "raw" / "events" / "dt=2026-11-01"
    # a reader still holding the first manifest reads it whole during the grace period
    assert lake.read("raw", "events", partitions=[first])["x"].to_pylist() == [0, 1, 2]
    assert json.loads((folder / RETIRED).read_text()) == {first.files[0]: clock.now}
    clock.now += 599
    lake.collect_garbage("raw", "events")
    assert sorted(p.name for p in folder.glob("*.parquet")) == sorted(first.files + second.files)
    clock.now += 1
    lake.collect_garbage("raw", "events")
    assert sorted(p.name for p in folder.glob("*.parquet")) == list(second.files)
    assert not (folder / RETIRED).exists()
    assert not set(first.files) & set(second.files)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["run_id"] == "run-b" and manifest["rows"] == 4


def test_stray_file_from_a_failed_rewrite_is_not_read(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, table(3))
    folder = tmp_path / "raw" / "events" / "dt=2026-11-01"
    pq.write_table(table(50, 1000), folder / "part-half-written-00000.parquet")  # no manifest update
    assert lake.read("raw", "events")["x"].to_pylist() == [0, 1, 2]


def test_commit_staged_spark_style_output(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    staged = tmp_path / "stage"
    for dt, rows in (("2026-11-01", 2), ("2026-11-02", 3)):
        (staged / f"dt={dt}").mkdir(parents=True)
        pq.write_table(table(rows), staged / f"dt={dt}" / "part-00000-abc.snappy.parquet")
        (staged / f"dt={dt}" / ".part-00000-abc.snappy.parquet.crc").write_text("x")
    (staged / "_SUCCESS").write_text("")
    committed = lake.commit_staged("features", "fs/v1/item", str(staged), "run-1")
    assert [(p.values["dt"], p.rows) for p in committed] == [("2026-11-01", 2), ("2026-11-02", 3)]
    assert lake.read("features", "fs/v1/item").num_rows == 5
    assert not any(staged.rglob("*.parquet"))


def test_write_partitioned_splits_on_columns(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    data = pa.table({"dt": ["a", "b", "a"], "x": [1, 2, 3]})
    parts = lake.write_partitioned("curated", "t", data, by=["dt"])
    assert sorted(p.rows for p in parts) == [1, 2]
    assert sorted(lake.read("curated", "t", columns=["x"])["x"].to_pylist()) == [1, 2, 3]


def test_json_documents_are_replaced_whole(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    uri = lake.uri("artifacts", "reports", "r.json")
    lake.write_json(uri, {"a": 1})
    lake.write_json(uri, {"b": 2})
    assert lake.read_json(uri) == {"b": 2}
    assert not list((tmp_path / "artifacts" / "reports").glob("*.tmp-*"))
    with pytest.raises(LakeError, match="does not exist"):
        lake.read_json(lake.uri("artifacts", "missing.json"))


def test_zones_resolve_from_settings(settings) -> None:  # type: ignore[no-untyped-def]
    lake = Lake.from_settings(settings)
    assert lake.zone_uri("raw") == str(settings.home / "lake" / "raw")
    with pytest.raises(LakeError, match="unknown lake zone"):
        lake.zone_uri("gold")  # type: ignore[arg-type]


def test_two_writers_and_a_reader_on_one_partition(tmp_path: Path) -> None:
    lake = Lake({z: str(tmp_path / z) for z in ZONES})  # real clock, default grace period
    outcome = two_writers_and_a_reader(lake)
    assert outcome.writer_errors == [] and outcome.failed_reads == [] and outcome.torn_reads == []
    assert outcome.reads >= 1
    assert final_write(lake) in {f"a-{WRITES - 1}", f"b-{WRITES - 1}"}


def test_a_held_lease_makes_the_next_writer_wait_and_then_give_up_clearly(tmp_path: Path) -> None:
    lake = Lake({z: str(tmp_path / z) for z in ZONES}, lease_timeout_s=0.0)
    held = file_lease(str(tmp_path / "raw" / "events" / LEASE), timeout_s=0)
    with held, pytest.raises(LakeError, match="held by another writer of this dataset"):
        lake.write_partition("raw", "events", {"dt": "2026-11-01"}, table(3))
    assert lake.partitions("raw", "events") == []
    assert not any((tmp_path / "raw" / "events").rglob("*.parquet")), "nothing staged outlives the failed commit"
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, table(3))
    assert lake.read("raw", "events").num_rows == 3


def test_drop_other_runs_unpublishes_everything_but_one_run(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    lake.write_partition("raw", "events", {"dt": "2026-11-01", "hour": "00"}, table(3), run_id="old")
    lake.write_partition("raw", "events", {"dt": "2026-11-01", "hour": "01"}, table(2), run_id="old")
    lake.write_partition("raw", "events", {"dt": "2026-11-02", "hour": "00"}, table(4), run_id="old")
    lake.write_partition("raw", "events", {"dt": "2026-11-01", "hour": "01"}, table(5, 100), run_id="new")
    lake.write_partition("raw", "events", {"dt": "2026-11-03", "hour": "00"}, table(1, 200), run_id="new")

    dropped = lake.drop_other_runs("raw", "events", keep_run_id="new")

    assert sorted(p.path for p in dropped) == ["dt=2026-11-01/hour=00", "dt=2026-11-02/hour=00"]
    assert {p.run_id for p in lake.partitions("raw", "events")} == {"new"}
    assert sorted(lake.read("raw", "events")["x"].to_pylist()) == [100, 101, 102, 103, 104, 200]
    base = tmp_path / "raw" / "events"
    assert not (base / "dt=2026-11-01" / "hour=00").exists() and not (base / "dt=2026-11-02").exists()
    assert (base / "dt=2026-11-01" / "hour=01" / MANIFEST).is_file()
    assert lake.drop_other_runs("raw", "events", keep_run_id="new") == []
