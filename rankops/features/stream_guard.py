"""The streaming job's first stage: every micro-batch of raw events is split into
*quarantined* (malformed, with a reason), *late* (at or before the watermark) and *accepted*
events, each written to the lake under the micro-batch id (the accepted ones also summed per slide
bucket: :mod:`rankops.features.stream_buckets`), then a small record commits the batch.

Why a stage of its own: Spark's windowed aggregation drops late rows without saying which;
here the watermark is ours, deterministic and persisted per batch (``max event time of the
accepted events of earlier batches - delay``), so a replayed batch splits exactly as the first
attempt did, late events are counted and kept, and the aggregation (same delay, fed only
accepted events) never drops one: an accepted event is newer than our watermark, which is never
behind Spark's (Spark's is computed from a subset of the same events).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.features.stream_buckets import bucket_counts
from rankops.lake import Lake
from rankops.stream_events import SCHEMA, publish

NO_WATERMARK = -(2**62)


@dataclass(frozen=True)
class BatchRecord:
    """What batch ``batch_id`` did, and the totals so far (what the job reports)."""

    batch_id: int
    watermark_ms: int  # the watermark this batch judged lateness by
    max_event_ms: int  # newest accepted event time so far
    accepted: int
    late: int
    quarantined: int
    total_accepted: int
    total_late: int
    total_quarantined: int
    reasons: dict[str, int]  # quarantined so far, by reason


def reasons(table: pa.Table) -> pa.Array:
    """Per row: why it is malformed, or null if it is a valid event (first reason wins)."""
    checks = [
        ("missing event time", pc.is_null(table["ts"])),
        ("missing item_id", pc.or_kleene(pc.is_null(table["item_id"]), pc.equal(table["item_id"], ""))),
        ("missing seller_id", pc.or_kleene(pc.is_null(table["seller_id"]), pc.equal(table["seller_id"], ""))),
        ("missing clicked flag", pc.is_null(table["clicked"])),
        ("position below 1", pc.fill_null(pc.less(table["position"], 1), False)),
        ("contact without a click", pc.fill_null(pc.and_(table["contacted"], pc.invert(table["clicked"])), False)),
    ]
    out = pa.nulls(table.num_rows, pa.string())
    for reason, bad in reversed(checks):
        out = pc.if_else(pc.fill_null(bad, True), pa.scalar(reason), out)
    return out


def merged(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


def conform(table: pa.Table) -> pa.Table:
    """The source columns in the declared schema (extra columns dropped)."""
    return table.select(SCHEMA.names).cast(SCHEMA)


class Guard:
    """Splits micro-batches; ``folder`` is the job's lake folder (``<stream>/job``)."""

    def __init__(self, lake: Lake, folder: str, delay_ms: int) -> None:
        self.lake = lake
        self.folder = folder.rstrip("/")
        self.delay_ms = delay_ms

    def record_uri(self, batch_id: int) -> str:
        return f"{self.folder}/guard/batch-{batch_id:09d}.json"

    def accepted_folder(self) -> str:
        return f"{self.folder}/accepted"

    def buckets_folder(self) -> str:
        """Accepted events summed per entity, key and slide bucket: what the aggregations read."""
        return f"{self.folder}/buckets"

    def previous(self, batch_id: int) -> BatchRecord | None:
        """The record of the batch before ``batch_id`` (Spark runs batches in order and
        commits one only after its sink returned, so it exists unless this is the first)."""
        if batch_id == 0:
            return None
        uri = self.record_uri(batch_id - 1)
        if not self.lake.exists(uri):
            return None
        return BatchRecord(**self.lake.read_json(uri))

    def latest(self) -> BatchRecord | None:
        """The newest committed record (for reports)."""
        fs, path = self.lake.filesystem(f"{self.folder}/guard")
        from pyarrow import fs as pafs

        infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        names = sorted(i.base_name for i in infos if i.base_name.endswith(".json"))
        return BatchRecord(**self.lake.read_json(f"{self.folder}/guard/{names[-1]}")) if names else None

    def split(self, table: pa.Table, batch_id: int) -> BatchRecord:
        """Quarantine, count late, publish accepted events, then commit the record."""
        table = conform(table)
        prev = self.previous(batch_id)
        watermark = prev.max_event_ms - self.delay_ms if prev else NO_WATERMARK
        why = reasons(table)
        valid = pc.is_null(why)
        bad = table.filter(pc.invert(valid)).append_column("reason", why.filter(pc.invert(valid)))
        good = table.filter(valid)
        ts = good["ts"].cast(pa.int64())
        late_mask = pc.less_equal(ts, watermark)
        late, accepted = good.filter(late_mask), good.filter(pc.invert(late_mask))
        name = f"batch-{batch_id:09d}"
        outputs = (("quarantine", bad), ("late", late), ("accepted", accepted), ("buckets", bucket_counts(accepted)))
        for sub, table_out in outputs:
            if table_out.num_rows:
                publish(self.lake, f"{self.folder}/{sub}", table_out, name)
        newest = int(pc.max(accepted["ts"].cast(pa.int64())).as_py()) if accepted.num_rows else NO_WATERMARK
        counts = dict(zip(*np.unique(bad["reason"].to_numpy(zero_copy_only=False), return_counts=True), strict=True))
        record = BatchRecord(
            batch_id=batch_id,
            watermark_ms=watermark,
            max_event_ms=max(prev.max_event_ms if prev else NO_WATERMARK, newest),
            accepted=accepted.num_rows,
            late=late.num_rows,
            quarantined=bad.num_rows,
            total_accepted=(prev.total_accepted if prev else 0) + accepted.num_rows,
            total_late=(prev.total_late if prev else 0) + late.num_rows,
            total_quarantined=(prev.total_quarantined if prev else 0) + bad.num_rows,
            reasons=merged(prev.reasons if prev else {}, {str(k): int(v) for k, v in counts.items()}),
        )
        self.lake.write_json(self.record_uri(batch_id), asdict(record))
        return record
