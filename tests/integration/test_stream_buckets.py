"""Summing accepted events per slide bucket first gives the same window counts as counting the
events themselves, at the slide and window boundaries too (where a bucket stamped with its start
could land in the wrong window)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rankops.features import stream_buckets, streaming
from rankops.stream_events import SCHEMA

SLIDE_MS = stream_buckets.slide_ms()
BASE = 1_800_000_000_000 // (12 * SLIDE_MS) * (12 * SLIDE_MS)  # an hour-aligned instant


def boundary_events() -> pa.Table:
    times = []
    for k in range(14):  # every bucket boundary over an hour, the millisecond before and after it
        edge = BASE + k * SLIDE_MS
        times += [edge - 1, edge, edge + 1, edge + SLIDE_MS // 2]
    n = len(times)
    rng = np.random.default_rng(2)
    clicked = rng.random(n) < 0.4
    return pa.table(
        {
            "ts": pa.array(times, pa.timestamp("ms", tz="UTC")),
            "request_id": [f"r-{i}" for i in range(n)],
            "item_id": [f"i-{i % 3}" for i in range(n)],
            "seller_id": [f"s-{i % 2}" for i in range(n)],
            "position": pa.array(np.arange(n) % 5 + 1, pa.int16()),
            "clicked": clicked,
            "contacted": clicked & (rng.random(n) < 0.5),
        },
        schema=SCHEMA,
    )


def rows(frame) -> list[tuple]:  # type: ignore[no-untyped-def]
    table = streaming._flat(frame).toArrow()
    return sorted(zip(*[table[c].to_pylist() for c in ("entity", "key", "end_s", *streaming.MEASURES)], strict=True))


def test_bucket_sums_equal_event_counts_at_every_boundary(spark) -> None:  # type: ignore[no-untyped-def]
    events = boundary_events()
    buckets = stream_buckets.bucket_counts(events)
    assert buckets.num_rows < 2 * events.num_rows  # fewer rows: that is the point
    assert sum(buckets.filter(pa.compute.equal(buckets["entity"], "item"))["impressions"].to_pylist()) == len(events)
    raw = spark.createDataFrame(events.to_pandas())
    summed = spark.createDataFrame(buckets.to_pandas(), stream_buckets.spark_schema())
    for window in streaming.windows():
        entities = sorted({f.entity for f in streaming.stream_features() if f.window == window})
        expected = rows(streaming.window_counts(raw, window))
        assert expected, window
        assert rows(stream_buckets.window_sums(summed, window, entities)) == expected, window
