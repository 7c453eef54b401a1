"""The AWS event path end to end, short of a deployed account: a producer sends events with
``put_events`` into a Kinesis stream shaped like the synthesized one (moto), the records come
back with GetRecords, and the job's own parsing (Spark ``from_json``, as on the ``aws-kinesis``
source) turns them back into the same events; a record that is not an event is quarantined by the
guard with a reason, not lost."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from moto import mock_aws

from rankops.features.stream_guard import Guard
from rankops.features.stream_sources import parse_records, put_events, source_schema
from rankops.stream_events import StreamSpec, events

REGION = "eu-west-1"


@pytest.fixture
def kinesis(synthesized_env, monkeypatch):  # type: ignore[no-untyped-def]
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    template = synthesized_env("dev").template("feature-compute")
    (props,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Kinesis::Stream"]
    with mock_aws():
        client = boto3.client("kinesis", region_name=REGION)
        client.create_stream(StreamName=props["Name"], ShardCount=2)  # moto: on-demand modelled by shards
        encryption = props["StreamEncryption"]
        client.start_stream_encryption(
            StreamName=props["Name"], EncryptionType=encryption["EncryptionType"], KeyId=encryption["KeyId"]
        )
        yield client, props["Name"]


def read_all(client, name: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    out: list[bytes] = []
    for shard in client.list_shards(StreamName=name)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        out += [r["Data"] for r in client.get_records(ShardIterator=iterator, Limit=10_000)["Records"]]
    return out


def test_events_sent_to_kinesis_parse_back_into_the_same_events(kinesis, spark, lake) -> None:  # type: ignore[no-untyped-def]
    client, name = kinesis
    sent = events(StreamSpec(), np.random.default_rng(3), 1200, 1_800_000_000_000, 1_800_000_600_000)
    assert put_events(client, name, sent) == 1200  # three PutRecords calls (500 per call)
    client.put_record(StreamName=name, Data=b"not an event", PartitionKey="x")
    assert client.describe_stream(StreamName=name)["StreamDescription"]["EncryptionType"] == "KMS"

    records = read_all(client, name)
    frame = spark.createDataFrame([(d,) for d in records], "data binary")
    parsed = parse_records(frame, source_schema()).toArrow()
    good = parsed.filter(pa.compute.is_valid(parsed["item_id"]))
    key = ["ts", "request_id", "item_id", "seller_id", "position", "clicked", "contacted"]
    back = sorted(zip(*[good[c].to_pylist() for c in key], strict=True))
    assert back == sorted(zip(*[sent[c].to_pylist() for c in key], strict=True)), "every field survives the trip"

    guard = Guard(lake, lake.uri("raw", "stream", "job"), 120_000)
    record = guard.split(parsed, 0)
    assert record.total_accepted == 1200 and record.total_quarantined == 1
    assert sum(record.reasons.values()) == 1
