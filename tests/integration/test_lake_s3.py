"""The same lake code against S3 (moto's server, reached through pyarrow's S3 client)."""

from collections.abc import Iterator

import boto3
import pyarrow as pa
import pytest
from moto.server import ThreadedMotoServer

from rankops.lake import ZONES, Lake


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    yield endpoint
    server.stop()


def test_partitions_commit_and_read_back_on_s3(s3_endpoint: str) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-1")
    s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    lake = Lake({z: f"s3://lake/{z}" for z in ZONES})
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [1, 2]}), run_id="a")
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [3]}), run_id="b")
    lake.write_partition("raw", "events", {"dt": "2026-11-02"}, pa.table({"x": [4]}), run_id="b")
    assert sorted(lake.read("raw", "events")["x"].to_pylist()) == [3, 4]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="raw/")["Contents"])
    assert "raw/events/dt=2026-11-01/_SUCCESS" in keys
    assert not [k for k in keys if "part-a-" in k], "files of the replaced run are deleted after commit"
    assert not [k for k in keys if "_staging" in k and k.endswith(".parquet")], "nothing is left staged"
    lake.write_json(lake.uri("artifacts", "x.json"), {"ok": True})
    assert lake.read_json(lake.uri("artifacts", "x.json")) == {"ok": True}
