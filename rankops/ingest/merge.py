"""The ingest run: parsed rows merged with the stored partitions (duplicates kept once,
conflicts quarantined) and committed atomically; see :mod:`rankops.ingest` for the rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rankops.errors import DataError
from rankops.ingest.mapping import OPTIONAL_EVENTS, OPTIONAL_ITEMS, Mapping, TableMapping
from rankops.ingest.parse import (
    MALFORMED_ROW,
    file_columns,
    flag,
    parse_events,
    parse_items,
    read_batches,
    source_files,
)
from rankops.lake import Lake, new_run_id
from rankops.synthetic import EVENTS_SCHEMA, ITEMS_SCHEMA

# -- the run ---------------------------------------------------------------------------------
EVENT_KEY = ["request_id", "item_id", "position"]  # one impression: a request showed an item at a position
ITEM_VALUES = ("seller_id", "category", "price", "image_quality")
CONFLICT_IN_RUN = "same request_id, item_id and position as an earlier row with different values"
CONFLICT_STORED = "same request_id, item_id and position as a stored event with different values"
UNUSABLE = "no created_at and never shown"


@dataclass
class IngestReport:
    """What a run did. Events: ``events_written`` were added to the lake,
    ``events_duplicates`` were exact repeats of an event already stored (or of an earlier
    row of this run) and are kept once. Items: ``items_new`` listings were added
    (``items_derived_from_events`` of them known only from the log), ``items_updated``
    stored listings were changed by the side table (or moved earlier because the log
    shows them before their creation), ``items_unchanged`` side-table rows matched the
    stored listing. Every rejected row is counted in ``*_quarantined`` by reason."""

    run_id: str
    files: list[str]
    events_read: int = 0
    events_written: int = 0
    events_duplicates: int = 0
    events_quarantined: dict[str, int] = field(default_factory=dict)
    items_read: int = 0
    items_written: int = 0
    items_new: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    items_quarantined: dict[str, int] = field(default_factory=dict)
    items_derived_from_events: int = 0
    items_created_at_clamped: int = 0
    items_unusable: int = 0
    missing_optional_columns: dict[str, list[str]] = field(default_factory=dict)
    partitions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _read_table(
    files: list[Path],
    tm: TableMapping,
    table: str,
    optional: tuple[str, ...],
    report: IngestReport,
    malformed: list[dict[str, str]],
) -> Iterator[pd.DataFrame]:
    """Batches renamed to raw column names; missing optional columns are reported, missing
    required ones are an error naming the file. Malformed CSV rows are appended to
    ``malformed`` (with their text and file) instead."""
    for path in files:
        present = set(file_columns(path, tm.format))
        absent = [raw for raw, theirs in tm.columns.items() if theirs not in present]
        required = [c for c in absent if c not in optional]
        if required:
            cols = {c: tm.columns[c] for c in required}
            raise DataError(f"{path}: required {table} columns missing from the file: {cols}")
        unmapped = [c for c in optional if c not in tm.columns]
        missing = sorted({*absent, *unmapped})
        if missing:
            report.missing_optional_columns.setdefault(table, [])
            report.missing_optional_columns[table] = sorted({*report.missing_optional_columns[table], *missing})
        rename = {theirs: raw for raw, theirs in tm.columns.items() if theirs in present}
        lines: list[str] = []
        for batch in read_batches(path, list(rename), tm.format, lines):
            yield batch.rename(columns=rename)
        malformed += [{"raw_line": line, "source_file": str(path), "reason": MALFORMED_ROW} for line in lines]


def _quarantine(lake: Lake, table: str, rows: list[pd.DataFrame], run_id: str) -> None:
    rows = [r for r in rows if len(r)]
    if rows:
        frame = pd.concat(rows, ignore_index=True).astype("string")
        lake.write_partition(
            "raw", f"quarantine/{table}", {"run": run_id}, pa.Table.from_pandas(frame, preserve_index=False), run_id
        )


def _count(target: dict[str, int], reasons: pd.Series) -> None:
    for reason, n in reasons[reasons != ""].value_counts().items():
        target[str(reason)] = target.get(str(reason), 0) + int(n)


def _canonical(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """``frame`` exactly as the lake stores it (types, millisecond times), with a fresh index."""
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False, safe=False).to_pandas()


def _equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values are equal."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    same = (a == b).astype("boolean").fillna(False).to_numpy(dtype=bool)
    return same | (a.isna().to_numpy() & b.isna().to_numpy())


def _stack(frames: list[pd.DataFrame], empty: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """``pd.concat`` of the non-empty frames (``empty`` if there are none)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, **kwargs) if frames else empty


def _compare(rows: pd.DataFrame, reference: pd.DataFrame, key: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows``: whether ``reference`` has a row with its key, and whether that
    row has identical values."""
    ref = reference.drop_duplicates(key)
    joined = rows.reset_index(drop=True).merge(ref, on=key, how="left", suffixes=("", "__ref"), indicator=True)
    known = joined["_merge"].eq("both").to_numpy()
    same = known.copy()
    for col in rows.columns:
        if col not in key:
            same &= _equal(joined[col], joined[f"{col}__ref"])
    return known, same


def ingest(
    lake: Lake,
    source: Path,
    mapping: Mapping,
    items_source: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Validate, quarantine and merge a log (and its optional item side table) into ``raw``.

    Every file is read and checked before anything is written. Each hour (and creation
    day) the run touches is rewritten as the stored rows plus the new ones and committed
    atomically, so running ingest again, on the same or on other logs, never loses or
    duplicates a stored row (see the module docstring for the rules)."""
    say = progress or (lambda _m: None)
    run_id = new_run_id()
    files = source_files(source, mapping.events.format)
    report = IngestReport(run_id, [str(f) for f in files])
    events, bad_events = _read_events(files, mapping.events, report)
    side, side_raw, bad_items = _read_items(mapping, items_source, report)

    accepted, event_parts, conflicts = _merge_events(lake, events, report)
    bad_events.append(conflicts)
    say(
        f"events: {report.events_read:,} read, {report.events_written:,} new, {report.events_duplicates:,} "
        f"already stored, {sum(report.events_quarantined.values()):,} quarantined"
    )
    first_seen = accepted.groupby("item_id")["ts"].min() if len(accepted) else pd.Series(dtype="datetime64[ms, UTC]")
    item_parts, unusable = _merge_items(lake, side, side_raw, first_seen, report)
    bad_items.append(unusable)

    _quarantine(lake, "events", bad_events, run_id)
    _quarantine(lake, "items", bad_items, run_id)
    # The catalog first: a listing is published before (or with) the impressions that show it.
    for values, table in item_parts:
        lake.write_partition("raw", "items", values, table, run_id)
    for values, table in event_parts:
        lake.write_partition("raw", "events", values, table, run_id)
    report.partitions = len(item_parts) + len(event_parts)
    say(
        f"items: {report.items_new:,} new ({report.items_derived_from_events:,} known only from events), "
        f"{report.items_updated:,} updated, {sum(report.items_quarantined.values()):,} quarantined"
    )
    lake.write_json(lake.uri("raw", "_meta", "ingest", f"{run_id}.json"), report.as_dict())
    return report


def _read_events(files: list[Path], tm: TableMapping, report: IngestReport) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    good: list[pd.DataFrame] = []
    bad: list[pd.DataFrame] = []
    malformed: list[dict[str, str]] = []
    for raw in _read_table(files, tm, "events", tuple(OPTIONAL_EVENTS), report, malformed):
        parsed = parse_events(raw, tm.time_unit)
        ok = (parsed.reasons == "").to_numpy()
        report.events_read += len(raw)
        _count(report.events_quarantined, parsed.reasons)
        good.append(parsed.frame[ok])
        if (~ok).any():
            bad.append(raw[~ok].assign(reason=parsed.reasons[~ok]))
    if malformed:
        report.events_read += len(malformed)
        report.events_quarantined[MALFORMED_ROW] = len(malformed)
        bad.append(pd.DataFrame(malformed))
    events = pd.concat(good, ignore_index=True) if good else EVENTS_SCHEMA.empty_table().to_pandas()
    return _canonical(events, EVENTS_SCHEMA), bad


def _merge_events(
    lake: Lake, events: pd.DataFrame, report: IngestReport
) -> tuple[pd.DataFrame, list[tuple[dict[str, str], pa.Table]], pd.DataFrame]:
    """-> (the run's distinct accepted events, the hour partitions to commit, rows to quarantine).

    An event is identified by (request_id, item_id, position). The first row of a key
    stands: a later exact repeat (in this run, or of a stored event) is counted as a
    duplicate and kept once; a later row with the same key but other values is
    quarantined. An hour partition is rewritten as its stored rows plus the new ones."""
    repeat = events.duplicated(EVENT_KEY, keep="first").to_numpy()
    firsts = events[~repeat].reset_index(drop=True)
    _, same = _compare(events[repeat], firsts, EVENT_KEY)
    report.events_duplicates += int(same.sum())
    conflicts = [events[repeat].reset_index(drop=True)[~same].assign(reason=CONFLICT_IN_RUN)]

    stored_parts = {(p.values["dt"], p.values["hour"]): p for p in lake.partitions("raw", "events")}
    hours = firsts["ts"].dt.strftime("%Y-%m-%d %H") if len(firsts) else pd.Series(dtype=str)
    parts: list[tuple[dict[str, str], pa.Table]] = []
    rejected: list[int] = []
    for hour, rows in firsts.groupby(hours.to_numpy(), sort=True):
        dt, hh = str(hour).split(" ")
        values = {"dt": dt, "hour": hh}
        stored = EVENTS_SCHEMA.empty_table().to_pandas()
        if (dt, hh) in stored_parts:
            table = lake.read("raw", "events", partitions=[stored_parts[(dt, hh)]])
            stored = table.select(EVENTS_SCHEMA.names).cast(EVENTS_SCHEMA).to_pandas()
        known, same = _compare(rows, stored, EVENT_KEY)
        report.events_duplicates += int(same.sum())
        conflicts.append(rows[known & ~same].assign(reason=CONFLICT_STORED))
        rejected.extend(rows.index[known & ~same])
        new = rows[~known]
        if not len(new):
            continue  # nothing new for this hour: the stored partition stays as it is
        report.events_written += len(new)
        merged = _stack([stored, new], new, ignore_index=True)
        merged = merged.sort_values(["ts", "request_id", "position"], kind="stable")
        parts.append((values, pa.Table.from_pandas(merged, schema=EVENTS_SCHEMA, preserve_index=False, safe=False)))
    bad = _stack(conflicts, conflicts[0], ignore_index=True)
    for reason, n in bad["reason"].value_counts().items():
        report.events_quarantined[str(reason)] = report.events_quarantined.get(str(reason), 0) + int(n)
    return firsts.drop(index=rejected), parts, bad


def _empty_items() -> pd.DataFrame:
    return ITEMS_SCHEMA.empty_table().to_pandas()


def _read_items(
    mapping: Mapping, items_source: Path | None, report: IngestReport
) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """-> (valid side-table rows, their original values, rows to quarantine). A listing
    given more than once (in one file or across the files of a run) keeps its first row."""
    tm = mapping.items
    source = items_source or (tm.source if tm else None)
    if source is None:
        report.missing_optional_columns["items"] = ["(no item side table)"]
        return _empty_items(), pd.DataFrame(), []
    tm = tm or TableMapping({"item_id": "item_id"})
    files = source_files(source, tm.format, "--items" if items_source else "items.source")
    good: list[pd.DataFrame] = []
    originals: list[pd.DataFrame] = []
    bad: list[pd.DataFrame] = []
    malformed: list[dict[str, str]] = []
    seen: set[str] = set()
    for raw in _read_table(files, tm, "items", OPTIONAL_ITEMS, report, malformed):
        parsed = parse_items(raw, tm.time_unit)
        ids = parsed.frame["item_id"]
        flag(parsed.reasons, (ids.isin(seen) & ids.notna()).to_numpy(), "duplicate item_id")
        ok = (parsed.reasons == "").to_numpy()
        seen.update(ids[ok])
        report.items_read += len(raw)
        _count(report.items_quarantined, parsed.reasons)
        good.append(parsed.frame[ok])
        originals.append(raw[ok])
        if (~ok).any():
            bad.append(raw[~ok].assign(reason=parsed.reasons[~ok]))
    if malformed:
        report.items_read += len(malformed)
        report.items_quarantined[MALFORMED_ROW] = len(malformed)
        bad.append(pd.DataFrame(malformed))
    side = pd.concat(good, ignore_index=True) if good else _empty_items()
    side["created_at"] = pd.to_datetime(side["created_at"], utc=True)
    originals_frame = pd.concat(originals, ignore_index=True) if originals else pd.DataFrame()
    return _canonical(side, ITEMS_SCHEMA), originals_frame, bad


def _earliest(a: pd.Series, b: pd.Series) -> pd.Series:
    return a.where(b.isna() | (a.notna() & (a <= b)), b)


def _merge_items(
    lake: Lake, side: pd.DataFrame, originals: pd.DataFrame, first_seen: pd.Series, report: IngestReport
) -> tuple[list[tuple[dict[str, str], pa.Table]], pd.DataFrame]:
    """-> (the creation-day partitions to commit, side-table rows to quarantine).

    A listing already in the lake keeps its stored row unless the side table gives it
    again: then every value the side table has replaces the stored one (an empty value
    keeps it), and its creation time only ever moves earlier. A listing not in the lake
    gets the side table's row, or, if the log shows it and the side table does not have
    it, a row known only from events. A listing without a creation time was created when
    it was first shown; one that is neither dated nor shown is quarantined. Nothing is
    shown before it exists: a creation time after the first impression becomes that
    impression's time (this also moves a stored listing earlier)."""
    stored_parts = {p.values["dt"]: p for p in lake.partitions("raw", "items")}
    days: dict[str, pd.DataFrame] = {}

    def stored_day(day: str) -> pd.DataFrame:
        if day not in days:
            part = stored_parts.get(day)
            table = lake.read("raw", "items", partitions=[part]) if part else ITEMS_SCHEMA.empty_table()
            days[day] = table.select(ITEMS_SCHEMA.names).cast(ITEMS_SCHEMA).to_pandas()
        return days[day]

    if stored_parts:
        index = lake.read("raw", "items", columns=["item_id", "created_at", "dt"]).to_pandas()
    else:
        index = _empty_items()[["item_id", "created_at"]].assign(dt=pd.Series(dtype=object))
    stored_created = index.groupby("item_id")["created_at"].min()
    in_lake = side["item_id"].isin(stored_created.index).to_numpy()
    before = stored_created.reindex(first_seen.index)
    early = first_seen.index[(first_seen < before).fillna(False).to_numpy(dtype=bool)]
    touched = pd.Index(side["item_id"][in_lake]).union(early)

    # Stored listings this run may change: their stored row (the earliest, if an older
    # version stored one twice), overlaid with the side table's values.
    old_days = sorted(set(index["dt"][index["item_id"].isin(touched)]))
    stored = _stack([stored_day(d) for d in old_days], _empty_items(), ignore_index=True)
    stored = stored[stored["item_id"].isin(touched)].sort_values("created_at", kind="stable")
    base = stored.drop_duplicates("item_id").set_index("item_id")
    given = side[in_lake].set_index("item_id").reindex(base.index)
    updated = base.copy()
    for col in ITEM_VALUES:
        updated[col] = given[col].where(given[col].notna(), base[col])
    updated["created_at"] = _earliest(base["created_at"], given["created_at"])

    new_side = side[~in_lake].set_index("item_id")
    derived_ids = first_seen.index.difference(side["item_id"]).difference(stored_created.index)
    report.items_derived_from_events = len(derived_ids)
    final = _stack([updated, new_side], _empty_items().set_index("item_id"))
    # Listings known only from events: no values yet.
    final = final.reindex(pd.Index([*final.index, *derived_ids], dtype=object, name="item_id"))
    seen = first_seen.reindex(final.index)
    created = final["created_at"].fillna(seen)
    late = (seen.notna() & (created > seen)).to_numpy()
    report.items_created_at_clamped = int(late.sum())
    final["created_at"] = created.where(~late, seen)

    unusable_ids = final.index[final["created_at"].isna().to_numpy()]
    report.items_unusable = len(unusable_ids)
    unusable = originals[side["item_id"].isin(unusable_ids).to_numpy()].assign(reason=UNUSABLE)
    if len(unusable_ids):
        report.items_quarantined[UNUSABLE] = report.items_quarantined.get(UNUSABLE, 0) + len(unusable_ids)
    final = final.drop(unusable_ids)

    old = final.index.isin(base.index)
    twice = set(index["item_id"][index["item_id"].duplicated()])
    same = np.ones(int(old.sum()), dtype=bool)
    for col in [*ITEM_VALUES, "created_at"]:
        same &= _equal(final.loc[old, col], base.loc[final.index[old], col])
    changed_old = final.index[old][~same | final.index[old].isin(list(twice))]
    report.items_updated = len(changed_old)
    report.items_unchanged = int(old.sum()) - len(changed_old)
    report.items_new = int((~old).sum())
    report.items_written = report.items_new + report.items_updated

    write = final[~old | final.index.isin(changed_old)].reset_index(names="item_id")
    write = _canonical(write, ITEMS_SCHEMA)
    write_days = write["created_at"].dt.strftime("%Y-%m-%d").to_numpy()
    moved_from = set(index["dt"][index["item_id"].isin(changed_old)])
    add_days = sorted(set(write_days))
    parts: list[tuple[dict[str, str], pa.Table]] = []
    # Days that gain rows first, then days that only lose moved listings: a run stopped in
    # between leaves a listing twice (the next run repairs it), never lost.
    for day in [*add_days, *sorted(moved_from - set(add_days))]:
        kept = stored_day(day)
        kept = kept[~kept["item_id"].isin(changed_old)]
        rows = _stack([kept, write[write_days == day]], kept, ignore_index=True)
        rows = rows.sort_values("created_at", kind="stable")
        parts.append(({"dt": day}, pa.Table.from_pandas(rows, schema=ITEMS_SCHEMA, preserve_index=False, safe=False)))
    return parts, unusable
