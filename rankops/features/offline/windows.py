"""The time window of a feature run: hour-aligned ``(start, end]``, resolved from the lake's
data span and the published manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rankops.errors import DataError, LakeError
from rankops.lake import Lake, Partition

if TYPE_CHECKING:
    pass
from rankops.features.offline.names import HOUR


# -- the time window of a run ----------------------------------------------------------------
@dataclass(frozen=True)
class TimeWindow:
    """Feature times ``(start, end]``, both on the hour, UTC."""

    start: datetime
    end: datetime
    backfill: bool = False

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None:
                raise DataError(f"window {name} {value} has no time zone; use UTC")
            if value != floor_hour(value):
                raise DataError(f"window {name} {value.isoformat()} is not on the hour")
        if self.end <= self.start:
            raise DataError(f"empty window: start {self.start.isoformat()} is not before end {self.end.isoformat()}")

    @property
    def hours(self) -> int:
        return int((self.end - self.start) / HOUR)

    def comparable_key(self) -> str:
        """Runs are compared with earlier runs of the same length (and, below a day, the
        same hours of the day, so a night hour is not judged against a busy evening)."""
        return f"{self.hours}h" + (f"@{self.start.hour:02d}" if self.hours < 24 else "")

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "backfill": self.backfill}


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def parse_time(value: str) -> datetime:
    """ISO date or time, naive meaning UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise DataError(f"not an ISO time: {value!r} (e.g. 2026-11-03T14:00)") from err
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _partition_hour(p: Partition) -> datetime:
    return datetime.fromisoformat(p.values["dt"]).replace(tzinfo=UTC) + int(p.values.get("hour", "0")) * HOUR


def data_span(lake: Lake) -> tuple[datetime, datetime]:
    """First hour with a listing or an event, and the hour after the last event (from partition names)."""
    events = lake.partitions("raw", "events")
    if not events:
        raise LakeError(f"{lake.uri('raw', 'events')} has no committed events; run `rankops generate` or `ingest`")
    items = lake.partitions("raw", "items")
    first = min(_partition_hour(p) for p in [*events, *items]) - HOUR  # the window excludes its start
    return first, max(_partition_hour(p) for p in events) + HOUR


def resolve_window(
    lake: Lake,
    start: datetime | None = None,
    end: datetime | None = None,
    hours_back: int | None = None,
    now: datetime | None = None,
) -> TimeWindow:
    """The window of a run. No arguments: a backfill over all data. ``hours_back``:
    the last N complete hours (before ``end`` or now). Times are floored to the hour."""
    if hours_back is not None and start is not None:
        raise DataError("give either --start or --hours-back, not both")
    if hours_back is not None and hours_back <= 0:
        raise DataError(f"--hours-back must be positive, got {hours_back}")
    if start is None and hours_back is None:
        first, last = data_span(lake)
        return TimeWindow(first, floor_hour(end) if end else last, backfill=True)
    stop = floor_hour(end or now or datetime.now(UTC))
    begin = stop - hours_back * HOUR if hours_back is not None else floor_hour(start)  # type: ignore[arg-type]
    return TimeWindow(begin, stop)


def event_partitions(lake: Lake, start: datetime, end: datetime) -> list[Partition]:
    return [p for p in lake.partitions("raw", "events") if start <= _partition_hour(p) < end]
