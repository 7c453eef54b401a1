"""The same lake code against S3 (moto's server, reached through pyarrow's S3 client),
including the writers' conditional-write lease (``If-None-Match: *``)."""

import json
import time

import pyarrow as pa
import pytest

from rankops.errors import LakeError
from rankops.lake import ZONES, Lake
from rankops.lake_writers import LEASE
from tests.lake_concurrency import WRITES, final_write, two_writers_and_a_reader
from tests.moto_s3 import s3_client


def test_partitions_commit_and_read_back_on_s3(s3_endpoint: str, lake_bucket: str) -> None:
    s3 = s3_client(s3_endpoint)
    lake = Lake({z: f"s3://{lake_bucket}/{z}" for z in ZONES}, retire_after_s=0)
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [1, 2]}), run_id="a")
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [3]}), run_id="b")
    lake.write_partition("raw", "events", {"dt": "2026-11-02"}, pa.table({"x": [4]}), run_id="b")
    assert sorted(lake.read("raw", "events")["x"].to_pylist()) == [3, 4]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=lake_bucket, Prefix="raw/")["Contents"])
    assert "raw/events/dt=2026-11-01/_SUCCESS" in keys
    assert not [k for k in keys if "part-a-" in k], "files of the replaced run are deleted after commit"
    assert not [k for k in keys if "_staging" in k and k.endswith(".parquet")], "nothing is left staged"
    lake.write_json(lake.uri("artifacts", "x.json"), {"ok": True})
    assert lake.read_json(lake.uri("artifacts", "x.json")) == {"ok": True}


def test_two_writers_and_a_reader_on_one_s3_partition(s3_endpoint: str, lake_bucket: str) -> None:
    lake = Lake({z: f"s3://{lake_bucket}/{z}" for z in ZONES})
    outcome = two_writers_and_a_reader(lake)
    assert outcome.writer_errors == [] and outcome.failed_reads == [] and outcome.torn_reads == []
    assert outcome.reads >= 1
    assert final_write(lake) in {f"a-{WRITES - 1}", f"b-{WRITES - 1}"}


def test_s3_lease_waits_for_a_live_writer_and_takes_over_an_expired_one(s3_endpoint: str, lake_bucket: str) -> None:
    s3 = s3_client(s3_endpoint)
    lake = Lake({z: f"s3://{lake_bucket}/{z}" for z in ZONES}, lease_timeout_s=0.0, s3_client=s3)
    key = f"raw/events/{LEASE}"
    live = {"owner": "other-writer", "expires_at": time.time() + 3600}
    s3.put_object(Bucket=lake_bucket, Key=key, Body=json.dumps(live).encode())
    with pytest.raises(LakeError, match="held by writer other-writer"):
        lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [1]}))
    assert lake.partitions("raw", "events") == []
    crashed = {"owner": "crashed-writer", "expires_at": time.time() - 1}
    s3.put_object(Bucket=lake_bucket, Key=key, Body=json.dumps(crashed).encode())
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [1]}))
    assert lake.read("raw", "events")["x"].to_pylist() == [1]
    assert "Contents" not in s3.list_objects_v2(Bucket=lake_bucket, Prefix=key), "the lease is released after commit"


def test_replaced_files_stay_readable_on_s3_until_collected(s3_endpoint: str, lake_bucket: str) -> None:
    s3 = s3_client(s3_endpoint)
    now = [1_800_000_000.0]
    lake = Lake({z: f"s3://{lake_bucket}/{z}" for z in ZONES}, retire_after_s=600, clock=lambda: now[0])
    first = lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [1]}), run_id="a")
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [2]}), run_id="b")
    record = s3.get_object(Bucket=lake_bucket, Key="raw/events/dt=2026-11-01/_RETIRED")["Body"].read()
    assert json.loads(record) == {first.files[0]: now[0]}, "the retirement record lives in the bucket"
    assert lake.read("raw", "events", partitions=[first])["x"].to_pylist() == [1]
    now[0] += 600
    lake.collect_garbage("raw", "events")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lake_bucket, Prefix="raw/")["Contents"]]
    assert not [k for k in keys if "part-a-" in k or k.endswith("_RETIRED")], keys
    assert lake.read("raw", "events")["x"].to_pylist() == [2]


def test_one_s3_filesystem_per_bucket_with_the_paths_from_uri_gives(s3_endpoint: str, lake_bucket: str) -> None:
    """The lake reuses one pyarrow S3 client per bucket and configuration (rankops.aws_clients)
    instead of pyarrow's from_uri per object, and addresses objects exactly as from_uri would."""
    import pyarrow.fs as pafs

    uris = [f"s3://{lake_bucket}/{p}" for p in ("raw/a/b/", "raw/a//b", "", "/", "raw/a%20b", "raw/x.json")]
    made = [Lake.filesystem(uri) for uri in uris]
    assert len({id(fs) for fs, _ in made}) == 1, "one filesystem for one bucket"
    assert [path for _, path in made] == [pafs.FileSystem.from_uri(uri)[1] for uri in uris]
    assert made[0][0].region == pafs.FileSystem.from_uri(uris[0])[0].region
    lake = Lake({z: f"s3://{lake_bucket}/{z}" for z in ZONES})
    lake.write_json(lake.uri("artifacts", "a b.json"), {"ok": 1})
    assert s3_client(s3_endpoint).get_object(Bucket=lake_bucket, Key="artifacts/a b.json")["Body"].read()
    with pytest.raises(LakeError, match="cannot open lake location"):
        Lake.filesystem(f"s3://{lake_bucket}/raw?versionId=1")
