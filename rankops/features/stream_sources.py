"""Where the streaming job's raw events come from: a lake folder (locally, fed by ``rankops
generate --stream``) or, in AWS, a Kinesis data stream (``kinesis://<stream name>``), read with
the Structured Streaming Kinesis connector that EMR 7.1+ ships (format ``aws-kinesis``).

On Kinesis each record is one event as a JSON object with the fields of
:data:`rankops.stream_events.SCHEMA` (``ts`` as ISO-8601 UTC), partition key the item id
(:func:`kinesis_records`: what a producer sends with ``PutRecords``). Both sources give the
guard the same columns; a record whose JSON does not parse arrives with null fields and is
quarantined by the guard (``missing time`` etc.), never dropped silently.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa

from rankops.errors import RankopsError
from rankops.features.stream_runs import kinesis_stream
from rankops.spark_session import spark_uri
from rankops.stream_events import SCHEMA

KINESIS_FORMAT = "aws-kinesis"
MAX_RECORDS_PER_PUT = 500  # PutRecords' limit
PUT_ROUNDS = 5


class StreamError(RankopsError):
    """Events could not be sent to the stream."""


def source_schema() -> Any:
    """The Spark schema of :data:`rankops.stream_events.SCHEMA` (a file source needs one; the
    Kinesis records' JSON is parsed with it)."""
    from pyspark.sql import types as T

    spark_types = {"ts": T.TimestampType(), "position": T.ShortType(), "clicked": T.BooleanType()}
    spark_types["contacted"] = T.BooleanType()
    return T.StructType([T.StructField(n, spark_types.get(n, T.StringType())) for n in SCHEMA.names])


def raw_stream(spark: Any, source: str, schema: Any, max_files: int | None = None) -> Any:
    """A streaming DataFrame of raw events with ``schema``'s columns, from ``source``."""
    stream = kinesis_stream(source)
    if stream is None:
        opts = {"maxFilesPerTrigger": str(max_files)} if max_files else {}
        return spark.readStream.schema(schema).options(**opts).parquet(spark_uri(source))
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
    records = (
        spark.readStream.format(KINESIS_FORMAT)
        .option("kinesis.region", region)
        .option("kinesis.streamName", stream)
        .option("kinesis.consumerType", "GetRecords")
        .option("kinesis.endpointUrl", f"https://kinesis.{region}.amazonaws.com")
        # first start: everything the stream retains; later starts resume from the checkpoint
        .option("kinesis.startingPosition", "TRIM_HORIZON")
        .load()
    )
    return parse_records(records, schema)


def parse_records(records: Any, schema: Any) -> Any:
    """Kinesis records (a ``data`` binary column, stream or static) -> event columns. A record
    that is not an event's JSON gives nulls, which the guard quarantines with a reason."""
    from pyspark.sql import functions as F

    options = {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "mode": "PERMISSIVE"}
    parsed = F.from_json(F.col("data").cast("string"), schema, options)
    return records.select(parsed.alias("e")).select("e.*")


def kinesis_records(events: pa.Table) -> list[dict[str, Any]]:
    """Events (``SCHEMA``) -> ``PutRecords`` entries (send at most :data:`MAX_RECORDS_PER_PUT` per call)."""
    out = []
    for row in events.to_pylist():
        ts = row["ts"]
        doc = {**row, "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z" if ts else None}
        out.append({"Data": json.dumps(doc, separators=(",", ":")).encode(), "PartitionKey": row["item_id"] or "-"})
    return out


def put_events(kinesis: Any, stream_name: str, events: pa.Table) -> int:
    """Send events to the stream in ``PutRecords`` calls; returns how many were accepted. Records
    Kinesis rejects (throttling) are sent again, a few rounds, then it is an error naming how many."""
    records = kinesis_records(events)
    sent = 0
    for lo in range(0, len(records), MAX_RECORDS_PER_PUT):
        batch = records[lo : lo + MAX_RECORDS_PER_PUT]
        for _ in range(PUT_ROUNDS):
            if not batch:
                break
            result = kinesis.put_records(StreamName=stream_name, Records=batch)
            failed = [r for r, status in zip(batch, result["Records"], strict=True) if "ErrorCode" in status]
            sent += len(batch) - len(failed)
            batch = failed
        if batch:
            raise StreamError(f"kinesis rejected {len(batch)} records of {stream_name} {PUT_ROUNDS} times (throttled?)")
    return sent
