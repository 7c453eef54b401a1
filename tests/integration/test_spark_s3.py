"""Spark reads and writes the lake on S3 without s3a (no hadoop-aws jar here): through pyarrow's S3
client, with the same rows and the same types as a local lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankops.features.spark import read_committed
from rankops.lake import ZONES, Lake
from rankops.spark_session import s3a_available, write_parquet


@pytest.fixture
def s3_lake(lake_bucket: str) -> Lake:
    return Lake({z: f"s3://{lake_bucket}/{z}" for z in ZONES})


def _round_trip(spark, lake: Lake) -> tuple[list[tuple], str]:  # type: ignore[no-untyped-def]
    frame = spark.createDataFrame(
        [("a", 1.0, "2026-11-01"), ("b", 2.0, "2026-11-02")], "item_id string, x double, dt string"
    )
    staged = lake.uri("features", "items", "_staging", "run-1")
    write_parquet(frame, staged, "dt")
    lake.commit_staged("features", "items", staged, "run-1")
    back = read_committed(spark, lake, "features", "items")
    return sorted(tuple(r) for r in back.collect()), back.schema.simpleString()


def test_s3_lake_round_trip_matches_local(spark, s3_lake: Lake, lake_bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert not s3a_available(spark), "this machine has no hadoop-aws; the pyarrow path is the one under test"
    local = _round_trip(spark, Lake({z: str(tmp_path / z) for z in ZONES}))
    on_s3 = _round_trip(spark, s3_lake)
    assert on_s3 == local
    assert len(on_s3[0]) == 2
    assert s3_lake.files("features", "items")[0].startswith(f"s3://{lake_bucket}/features/items/dt=")
