"""Impression events for the streaming source: the format the streaming feature job reads and a
generator that feeds it (``rankops generate --stream``).

One Parquet file per write, published atomically (a reader never sees half a file), named by
its first event time and a sequence number so a listing is in event order. The events carry
the item's seller, as a production click stream would (the batch logs join it from the
catalog instead).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rankops.lake import Lake

SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("request_id", pa.string()),
        ("item_id", pa.string()),
        ("seller_id", pa.string()),
        ("position", pa.int16()),
        ("clicked", pa.bool_()),
        ("contacted", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class StreamSpec:
    """Shape of the generated traffic: a catalog of ``items`` listings over ``sellers``."""

    items: int = 2_000
    sellers: int = 200
    click_rate: float = 0.08
    contact_rate: float = 0.25  # of clicks
    seed: int = 7


def events(spec: StreamSpec, rng: np.random.Generator, n: int, start_ms: int, end_ms: int) -> pa.Table:
    """``n`` impressions with event times uniform in ``[start_ms, end_ms)``, sorted by time.
    Popular items get more traffic (Zipf-like), so windows hold a realistic key skew."""
    items = np.minimum(rng.zipf(1.3, n) - 1, spec.items - 1)
    ts = np.sort(rng.integers(start_ms, max(end_ms, start_ms + 1), n))
    clicked = rng.random(n) < spec.click_rate
    contacted = clicked & (rng.random(n) < spec.contact_rate)
    return pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "request_id": pa.array([f"r-{start_ms}-{i // 20}" for i in range(n)]),
            "item_id": pa.array(np.char.add("i-", items.astype(str))),
            "seller_id": pa.array(np.char.add("s-", (items % spec.sellers).astype(str))),
            "position": pa.array((np.arange(n) % 20 + 1).astype(np.int16)),
            "clicked": pa.array(clicked),
            "contacted": pa.array(contacted),
        },
        schema=SCHEMA,
    )


def publish(lake: Lake, folder: str, table: pa.Table, name: str) -> str:
    """Write ``table`` as ``<folder>/<name>.parquet`` in one atomic step; returns its URI."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    uri = f"{folder.rstrip('/')}/{name}.parquet"
    lake.write_bytes(uri, buffer.getvalue())
    return uri


def file_name(start_ms: int, seq: int) -> str:
    return f"events-{start_ms:015d}-{seq:06d}"


def feed(
    lake: Lake,
    folder: str,
    rate: int,
    seconds: float,
    spec: StreamSpec | None = None,
    clock: Callable[[], float] = time.time,
    on_file: Callable[[str, int], None] | None = None,
) -> int:
    """Write ``rate`` events per second of wall time for ``seconds`` (one file a second, event
    times = the second they were generated in). Returns the number of events written."""
    spec = spec or StreamSpec()
    rng = np.random.default_rng(spec.seed)
    written, seq = 0, 0
    start = clock()
    while clock() - start < seconds:
        tick = clock()
        now_ms = int(tick * 1000)
        table = events(spec, rng, rate, now_ms - 1000, now_ms)
        uri = publish(lake, folder, table, file_name(now_ms - 1000, seq))
        written += table.num_rows
        seq += 1
        if on_file is not None:
            on_file(uri, table.num_rows)
        time.sleep(max(0.0, 1.0 - (clock() - tick)))
    return written
