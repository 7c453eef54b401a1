"""Where feedback lives: SageMaker data capture, in AWS and locally; one table from it.

In AWS the endpoint's data capture holds every answer; locally the server's
:class:`~rankops.feedback.log.FeedbackLog` writes the same format to the lake's
``raw/datacapture/local/`` (one folder per cohort). :func:`read_capture` turns capture into the
feedback columns (:data:`~rankops.feedback.record.SCHEMA`) when it is read, and :func:`read`
reads the local lake: its capture plus the Parquet partitions ``raw/feedback/dt=/hour=/batch=/``
that :func:`write` commits (records built elsewhere, and what servers logged before the log became
capture). A record that does not parse goes to ``raw/feedback_quarantine`` with its reason: never
dropped silently.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from rankops.feedback.log import LOCAL_ENDPOINT, capture_uri
from rankops.feedback.record import SCHEMA, FeedbackError, from_capture, to_table
from rankops.lake import Lake, Partition, new_run_id
from rankops.monitoring.data_capture import CaptureError, parse_line, variant_of_key

DATASET = "feedback"
QUARANTINE = "feedback_quarantine"
QUARANTINE_SCHEMA = pa.schema([("quarantined_at", pa.timestamp("ms", tz="UTC")), ("source", pa.string()),
                               ("reason", pa.string()), ("payload", pa.string())])  # fmt: skip
HOUR_FOLDERS_UP_TO = 48  # capture windows up to this many hours are listed hour folder by hour folder
OUTCOMES = ("click", "contact", "purchase")
OUTCOMES_DATASET = "outcomes"
OUTCOMES_SCHEMA = pa.schema([("request_id", pa.string()), ("position", pa.int32()), ("outcome", pa.string()),
                             ("value", pa.float64()), ("ts", pa.timestamp("ms", tz="UTC"))])  # fmt: skip


def write(lake: Lake, records: list[dict[str, Any]], run_id: str | None = None) -> list[Partition]:
    """Commit ``records`` as one partition per hour they fall in."""
    run_id = run_id or new_run_id()
    by_hour: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        ts: datetime = record["ts"].astimezone(UTC)
        by_hour.setdefault((f"{ts:%Y-%m-%d}", f"{ts:%H}"), []).append(record)
    return [
        lake.write_partition("raw", DATASET, {"dt": dt, "hour": hour, "batch": run_id}, to_table(rows), run_id)
        for (dt, hour), rows in sorted(by_hour.items())
    ]


def quarantine(lake: Lake, rejects: list[tuple[str, str]], source: str) -> Partition | None:
    """Keep records that did not parse, each with its reason (``(reason, payload)`` pairs)."""
    if not rejects:
        return None
    now = datetime.now(UTC)
    rows = [{"quarantined_at": now, "source": source, "reason": r, "payload": p} for r, p in rejects]
    run_id = new_run_id()
    table = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
    return lake.write_partition("raw", QUARANTINE, {"dt": f"{now:%Y-%m-%d}", "batch": run_id}, table, run_id)


def _in_window(part: Partition, since: datetime | None, until: datetime | None) -> bool:
    start = datetime.strptime(f"{part.values['dt']} {part.values['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    hour_s = 3600
    return (since is None or start.timestamp() + hour_s > since.timestamp()) and (until is None or start < until)


def read(lake: Lake, since: datetime | None = None, until: datetime | None = None) -> pa.Table:
    """The logged answers with ``since <= ts < until``, oldest first (an empty table when there are
    none): the local server's capture and the committed partitions."""
    captured = read_capture(lake, capture_uri(lake), LOCAL_ENDPOINT, since, until)
    committed = _read_partitions(lake, since, until)
    table = pa.concat_tables([committed, captured]) if committed.num_rows else captured
    ts = table["ts"]
    ordered = table.num_rows < 2 or pc.all(pc.less_equal(ts[:-1], ts[1:])).as_py()
    return table if ordered else table.sort_by("ts")


def _read_partitions(lake: Lake, since: datetime | None, until: datetime | None) -> pa.Table:
    parts = [p for p in lake.partitions("raw", DATASET) if _in_window(p, since, until)]
    if not parts:
        return SCHEMA.empty_table()
    try:
        table = lake.read("raw", DATASET, columns=SCHEMA.names, partitions=parts)
    except pa.ArrowInvalid:  # partitions written before a column existed (policy, features): one by one
        table = pa.concat_tables([_with_all_columns(lake.read("raw", DATASET, partitions=[p])) for p in parts])
    return _window(table.cast(SCHEMA), since, until)


def _with_all_columns(table: pa.Table) -> pa.Table:
    """``table`` with every column of :data:`SCHEMA`, nulls where an older writer had none."""
    columns = [table[n] if n in table.column_names else pa.nulls(table.num_rows, f.type) for n, f in
               zip(SCHEMA.names, SCHEMA, strict=True)]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _window(table: pa.Table, since: datetime | None, until: datetime | None) -> pa.Table:
    if since is not None:
        table = table.filter(pc.greater_equal(table["ts"], pa.scalar(since, SCHEMA.field("ts").type)))
    if until is not None:
        table = table.filter(pc.less(table["ts"], pa.scalar(until, SCHEMA.field("ts").type)))
    return table


def parse_capture(lines: Iterable[tuple[str, str]], endpoint: str) -> tuple[pa.Table, list[tuple[str, str]]]:
    """``(variant, line)`` pairs of data capture -> (feedback table, ``(reason, line)`` rejects)."""
    records, rejects = [], []
    for variant, line in lines:
        if not line.strip():
            continue
        try:
            records.append(from_capture(parse_line(line, endpoint, variant)))
        except (CaptureError, FeedbackError) as err:
            rejects.append((f"{variant}: {err}", line))
    return to_table(records), rejects


def read_capture(
    lake: Lake, destination_uri: str, endpoint: str, since: datetime | None = None, until: datetime | None = None
) -> pa.Table:
    """The answers an endpoint captured (every variant), as the feedback table; bad lines quarantined.
    With ``since`` only the day folders from ``since`` on are listed (capture keys are
    ``<variant>/yyyy/mm/dd/hh/``), so a 14-day window reads 14 days, not the whole history."""
    root = f"{destination_uri.rstrip('/')}/{endpoint}"
    fs, base = Lake.filesystem(root)
    tables = []
    for info in _capture_files(fs, base, since, until):
        variant = variant_of_key(f"{root}/{info.path[len(base) :].lstrip('/')}", destination_uri, endpoint)
        tables.append(_parsed_file(lake, fs, info, variant, endpoint))
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    return _window(table, since, until)


_PARSED: OrderedDict[tuple[str, int, int | None], pa.Table] = OrderedDict()
_PARSED_LOCK = threading.Lock()
PARSED_ROWS = 200_000  # feedback rows of parsed capture files kept per process (newest used first)


def _parsed_file(lake: Lake, fs: pafs.FileSystem, info: pafs.FileInfo, variant: str, endpoint: str) -> pa.Table:
    """One capture file as feedback rows, its bad lines quarantined. A capture file never changes
    once written (SageMaker's objects; the local log renames finished files into place), so a
    process that reads a window again (the simulator: every hour, then the day, then drift
    windows) parses each file once and quarantines its bad lines once."""
    key = (info.path, info.size, info.mtime_ns)
    with _PARSED_LOCK:
        if key in _PARSED:
            _PARSED.move_to_end(key)
            return _PARSED[key]
    with fs.open_input_stream(info.path) as stream:
        lines = [(variant, line) for line in stream.read().decode("utf-8", "replace").splitlines()]
    table, rejects = parse_capture(lines, endpoint)
    quarantine(lake, rejects, f"capture:{endpoint}")
    with _PARSED_LOCK:
        _PARSED[key] = table
        rows = sum(t.num_rows for t in _PARSED.values())
        while rows > PARSED_ROWS and len(_PARSED) > 1:
            rows -= _PARSED.popitem(last=False)[1].num_rows
    return table


def _capture_files(
    fs: pafs.FileSystem, base: str, since: datetime | None, until: datetime | None
) -> list[pafs.FileInfo]:
    """The ``.jsonl`` files under ``base`` (``<variant>/yyyy/mm/dd/hh/...``) in the window's hour
    folders when it spans at most :data:`HOUR_FOLDERS_UP_TO` hours (the simulator reads hour by
    hour), else in its day folders (one listing per day, not per hour, on S3)."""
    if since is None:
        folders = [base]
    else:
        first, last = since.astimezone(UTC), (until or datetime.now(UTC)).astimezone(UTC)
        variants = [i.path for i in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
                    if i.type == pafs.FileType.Directory]  # fmt: skip
        if last - first <= timedelta(hours=HOUR_FOLDERS_UP_TO):
            hours = pd.date_range(first.replace(minute=0, second=0, microsecond=0), last, freq="h")
            folders = [f"{v}/{hour:%Y/%m/%d/%H}" for v in variants for hour in hours]
        else:
            days = pd.date_range(first.date(), last.date(), freq="D")
            folders = [f"{v}/{day:%Y/%m/%d}" for v in variants for day in days]
    return sorted(
        (
            info
            for folder in folders
            for info in fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
            if info.type == pafs.FileType.File and info.path.endswith(".jsonl")
        ),
        key=lambda info: info.path,
    )


def capture_reader(
    lake: Lake, destination_uri: str, endpoint: str
) -> Callable[[datetime | None, datetime | None], pa.Table]:
    """``read(since, until)`` over an endpoint's data capture (what the off-policy job reads in AWS)."""
    return lambda since, until: read_capture(lake, destination_uri, endpoint, since, until)


def write_outcomes(lake: Lake, outcomes: pd.DataFrame) -> list[Partition]:
    """Commit outcome events (``OUTCOMES_SCHEMA``: what a user did at a shown position) by hour."""
    unknown = set(outcomes["outcome"]) - set(OUTCOMES)
    if unknown:
        raise FeedbackError(f"unknown outcome type(s) {sorted(unknown)}; expected {', '.join(OUTCOMES)}")
    table = pa.Table.from_pandas(outcomes[OUTCOMES_SCHEMA.names], schema=OUTCOMES_SCHEMA, preserve_index=False)
    hours = pc.strftime(table["ts"], format="%Y-%m-%d %H")
    run_id, parts = new_run_id(), []
    for hour in sorted(set(hours.to_pylist())):
        dt, hh = hour.split(" ")
        rows = table.filter(pc.equal(hours, hour))
        parts.append(
            lake.write_partition("raw", OUTCOMES_DATASET, {"dt": dt, "hour": hh, "batch": run_id}, rows, run_id)
        )
    return parts


def read_outcomes(lake: Lake, since: datetime | None = None) -> pa.Table:
    """Outcome events at or after ``since`` (they follow their answers, so no upper bound)."""
    parts = [p for p in lake.partitions("raw", OUTCOMES_DATASET) if _in_window(p, since, None)]
    if not parts:
        return OUTCOMES_SCHEMA.empty_table()
    table = lake.read("raw", OUTCOMES_DATASET, columns=OUTCOMES_SCHEMA.names, partitions=parts).cast(OUTCOMES_SCHEMA)
    return table if since is None else table.filter(pc.greater_equal(table["ts"], pa.scalar(since, table["ts"].type)))


def join_outcomes(feedback: pa.Table, outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per shown position (``request_id``, ``position`` from 1, ``item_id``, ``score``,
    ``propensity``, cohort columns) with a count column per outcome type (``click``, ``contact``,
    ``purchase``). ``outcomes`` has ``request_id``, ``position`` and ``outcome`` columns."""
    shown = feedback.to_pandas()
    shown = shown.explode(["items", "scores", "propensities"]).rename(
        columns={"items": "item_id", "scores": "score", "propensities": "propensity"}
    )
    shown["position"] = shown.groupby("request_id").cumcount() + 1
    unknown = set(outcomes["outcome"].unique()) - set(OUTCOMES) if len(outcomes) else set()
    if unknown:
        raise FeedbackError(f"unknown outcome type(s) {sorted(unknown)}; expected {', '.join(OUTCOMES)}")
    counts = (
        outcomes.assign(n=1).pivot_table(index=["request_id", "position"], columns="outcome", values="n", aggfunc="sum")
        if len(outcomes)
        else pd.DataFrame(columns=["request_id", "position"]).set_index(["request_id", "position"])
    )
    counts = counts.reindex(columns=list(OUTCOMES), fill_value=0)
    joined = shown.merge(counts, how="left", left_on=["request_id", "position"], right_index=True)
    joined[list(OUTCOMES)] = joined[list(OUTCOMES)].fillna(0).astype("int64")
    return joined.reset_index(drop=True)


def dumps(record: dict[str, Any]) -> str:
    """A record as JSON (the quarantine keeps what it could not store as text)."""
    return json.dumps(record, default=str, sort_keys=True)
