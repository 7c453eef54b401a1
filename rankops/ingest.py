"""Bring your own logs: a real impression/click log into the lake's raw layer.

A YAML mapping names, for each column of the raw schema (docs/schema.md), the
column of your file that holds it. Required event columns must be mapped and
present; optional ones may be missing (filled with neutral values and reported).
Every row that violates the schema is written, with a ``reason`` column, to the
``raw/quarantine/<table>`` dataset of the run: counted, never silently dropped.
Valid events are committed per hour (``raw/events/dt=/hour=``) and listings per
creation day (``raw/items/dt=``), exactly as ``rankops generate`` writes them, so
the feature jobs run on them unchanged. Re-ingesting replaces the hours (and
creation days) it covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from rankops.errors import DataError
from rankops.lake import Lake, new_run_id
from rankops.synthetic import EVENTS_SCHEMA, ITEMS_SCHEMA

REQUIRED_EVENTS = ("ts", "request_id", "item_id", "position", "clicked")
OPTIONAL_EVENTS = {"user_id": None, "query_category": None, "device": None, "contacted": False, "revenue": 0.0}
REQUIRED_ITEMS = ("item_id",)
OPTIONAL_ITEMS = ("seller_id", "category", "price", "image_quality", "created_at")
TRUE = {"1", "true", "t", "yes", "y", "1.0"}
FALSE = {"0", "false", "f", "no", "n", "0.0", ""}
TIME_UNITS = ("iso", "s", "ms", "us")
BATCH_ROWS = 500_000


@dataclass(frozen=True)
class TableMapping:
    columns: dict[str, str]
    source: Path | None = None
    format: str | None = None
    time_unit: str = "iso"


@dataclass(frozen=True)
class Mapping:
    events: TableMapping
    items: TableMapping | None


def load_mapping(path: Path) -> Mapping:
    """Parse and check a mapping file; every problem names the key."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DataError(f"cannot read mapping {path}: {err}") from err
    if not isinstance(doc, dict) or "events" not in doc:
        raise DataError(f"mapping {path}: expected a top-level 'events:' table (and optionally 'items:')")
    unknown = set(doc) - {"events", "items"}
    if unknown:
        raise DataError(f"mapping {path}: unknown top-level keys {sorted(unknown)}")

    def table(name: str, raw: Any, allowed: tuple[str, ...]) -> TableMapping:
        if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
            raise DataError(f"mapping {path}: '{name}.columns' must map raw columns to your column names")
        bad = set(raw) - {"columns", "source", "format", "timestamp_unit"}
        if bad:
            raise DataError(f"mapping {path}: unknown keys under '{name}': {sorted(bad)}")
        cols = {str(k): str(v) for k, v in raw["columns"].items()}
        extra = set(cols) - set(allowed)
        if extra:
            raise DataError(f"mapping {path}: '{name}.columns' names {sorted(extra)}, not in the raw schema {allowed}")
        unit = str(raw.get("timestamp_unit", "iso"))
        if unit not in TIME_UNITS:
            raise DataError(f"mapping {path}: '{name}.timestamp_unit' must be one of {TIME_UNITS}, got {unit!r}")
        fmt = raw.get("format")
        if fmt is not None and fmt not in ("csv", "parquet"):
            raise DataError(f"mapping {path}: '{name}.format' must be csv or parquet, got {fmt!r}")
        source = (Path(path).parent / raw["source"]) if raw.get("source") else None
        return TableMapping(cols, source, fmt, unit)

    events = table("events", doc["events"], (*REQUIRED_EVENTS, *OPTIONAL_EVENTS))
    missing = [c for c in REQUIRED_EVENTS if c not in events.columns]
    if missing:
        raise DataError(f"mapping {path}: required event columns {missing} are not mapped (see docs/schema.md)")
    items = table("items", doc["items"], (*REQUIRED_ITEMS, *OPTIONAL_ITEMS)) if doc.get("items") else None
    if items is not None and "item_id" not in items.columns:
        raise DataError(f"mapping {path}: 'items.columns' must map item_id")
    return Mapping(events, items)


# -- reading ---------------------------------------------------------------------------------
def source_files(source: Path, fmt: str | None) -> list[Path]:
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in (".csv", ".parquet"))
    elif source.is_file():
        files = [source]
    else:
        raise DataError(f"--source {source} does not exist")
    if not files:
        raise DataError(f"no .csv or .parquet files under {source}")
    return files


def read_batches(path: Path, wanted: list[str], fmt: str | None) -> Iterator[pd.DataFrame]:
    """The wanted columns of one file, as strings (CSV) or native types (Parquet), in batches."""
    kind = fmt or ("parquet" if path.suffix.lower() == ".parquet" else "csv")
    if kind == "parquet":
        parquet = pq.ParquetFile(path)
        present = [c for c in wanted if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
            yield batch.to_pandas()
        return
    header = pacsv.open_csv(path).schema.names
    present = [c for c in wanted if c in header]
    convert = pacsv.ConvertOptions(
        include_columns=present, column_types=dict.fromkeys(present, pa.string()), strings_can_be_null=True
    )
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24), convert_options=convert)
    for batch in reader:
        yield batch.to_pandas()


def file_columns(path: Path, fmt: str | None) -> list[str]:
    kind = fmt or ("parquet" if path.suffix.lower() == ".parquet" else "csv")
    return list(pq.ParquetFile(path).schema_arrow.names if kind == "parquet" else pacsv.open_csv(path).schema.names)


# -- parsing with reasons --------------------------------------------------------------------
@dataclass
class Parsed:
    frame: pd.DataFrame
    reasons: pd.Series  # "" where the row is valid


def _flag(reasons: pd.Series, bad: pd.Series | np.ndarray, reason: str) -> None:
    mask = np.asarray(bad, dtype=bool) & (reasons.to_numpy() == "")
    reasons[mask] = reason


def _timestamps(values: pd.Series, unit: str) -> pd.Series:
    if unit == "iso":
        if pd.api.types.is_datetime64_any_dtype(values):
            parsed = pd.to_datetime(values, utc=True)
        else:
            parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    else:
        parsed = pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit=unit, utc=True, errors="coerce")
    return parsed


def _booleans(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """-> (parsed booleans, mask of values that are not boolean-like)."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool), pd.Series(False, index=values.index)
    text = values.astype("string").str.strip().str.lower()
    truth = text.isin(TRUE)
    bad = ~(truth | text.isin(FALSE)) & text.notna()
    return truth.fillna(False).astype(bool), bad.fillna(False).astype(bool)


def _numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    parsed = pd.to_numeric(values, errors="coerce")
    return parsed, parsed.isna() & values.notna()


def parse_events(raw: pd.DataFrame, unit: str) -> Parsed:
    reasons = pd.Series("", index=raw.index, dtype=object)
    for col in REQUIRED_EVENTS:
        _flag(reasons, raw[col].isna(), f"missing {col}")
    ts = _timestamps(raw["ts"], unit)
    _flag(reasons, ts.isna(), "ts is not a time")
    position, bad_pos = _numbers(raw["position"])
    _flag(
        reasons, bad_pos | (position < 1) | (position > 32_767) | (position % 1 != 0), "position is not an integer >= 1"
    )
    clicked, bad_click = _booleans(raw["clicked"])
    _flag(reasons, bad_click, "clicked is not a boolean")
    contacted, bad_contact = (
        _booleans(raw["contacted"])
        if "contacted" in raw
        else (pd.Series(False, index=raw.index), pd.Series(False, index=raw.index))
    )
    _flag(reasons, bad_contact, "contacted is not a boolean")
    _flag(reasons, contacted & ~clicked, "contacted without a click")
    if "revenue" in raw:
        revenue, bad_rev = _numbers(raw["revenue"])
        _flag(reasons, bad_rev | (revenue < 0), "revenue is not a number >= 0")
        revenue = revenue.fillna(0.0)
    else:
        revenue = pd.Series(0.0, index=raw.index)
    frame = pd.DataFrame(
        {
            "request_id": raw["request_id"].astype("string"),
            "ts": ts,
            **{
                c: (raw[c].astype("string") if c in raw else pd.Series(pd.NA, index=raw.index, dtype="string"))
                for c in ("user_id", "query_category", "device")
            },
            "item_id": raw["item_id"].astype("string"),
            "position": position.where(reasons == "", 1).fillna(1).astype(np.int16),
            "clicked": clicked,
            "contacted": contacted,
            "revenue": revenue.astype(np.float64),
        }
    )
    return Parsed(frame, reasons)


def parse_items(raw: pd.DataFrame, unit: str) -> Parsed:
    reasons = pd.Series("", index=raw.index, dtype=object)
    _flag(reasons, raw["item_id"].isna(), "missing item_id")
    _flag(reasons, raw["item_id"].duplicated(keep="first") & raw["item_id"].notna(), "duplicate item_id")
    cols: dict[str, Any] = {"item_id": raw["item_id"].astype("string")}
    for col in ("seller_id", "category"):
        cols[col] = raw[col].astype("string") if col in raw else pd.Series(pd.NA, index=raw.index, dtype="string")
    price, bad_price = (
        _numbers(raw["price"])
        if "price" in raw
        else (pd.Series(np.nan, index=raw.index), pd.Series(False, index=raw.index))
    )
    _flag(reasons, bad_price | (price < 0), "price is not a number >= 0")
    quality, bad_q = (
        _numbers(raw["image_quality"])
        if "image_quality" in raw
        else (pd.Series(np.nan, index=raw.index), pd.Series(False, index=raw.index))
    )
    _flag(reasons, bad_q | (quality < 0) | (quality > 1), "image_quality is not in [0, 1]")
    created = (
        _timestamps(raw["created_at"], unit)
        if "created_at" in raw
        else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    )
    if "created_at" in raw:
        _flag(reasons, created.isna() & raw["created_at"].notna(), "created_at is not a time")
    cols.update({"price": price.astype(np.float64), "image_quality": quality.astype(np.float64), "created_at": created})
    return Parsed(pd.DataFrame(cols), reasons)


# -- the run ---------------------------------------------------------------------------------
@dataclass
class IngestReport:
    run_id: str
    files: list[str]
    events_read: int = 0
    events_written: int = 0
    events_quarantined: dict[str, int] = field(default_factory=dict)
    items_read: int = 0
    items_written: int = 0
    items_quarantined: dict[str, int] = field(default_factory=dict)
    items_derived_from_events: int = 0
    items_created_at_clamped: int = 0
    items_unusable: int = 0
    missing_optional_columns: dict[str, list[str]] = field(default_factory=dict)
    partitions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _read_table(
    files: list[Path], tm: TableMapping, table: str, optional: tuple[str, ...], report: IngestReport
) -> Iterator[pd.DataFrame]:
    """Batches renamed to raw column names; missing optional columns are reported, missing
    required ones are an error naming the file."""
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
        for batch in read_batches(path, list(rename), tm.format):
            yield batch.rename(columns=rename)


def _quarantine(lake: Lake, table: str, rows: list[pd.DataFrame], run_id: str) -> None:
    if rows:
        frame = pd.concat(rows, ignore_index=True).astype("string")
        lake.write_partition(
            "raw", f"quarantine/{table}", {"run": run_id}, pa.Table.from_pandas(frame, preserve_index=False), run_id
        )


def _count(target: dict[str, int], reasons: pd.Series) -> None:
    for reason, n in reasons[reasons != ""].value_counts().items():
        target[str(reason)] = target.get(str(reason), 0) + int(n)


def ingest(
    lake: Lake,
    source: Path,
    mapping: Mapping,
    items_source: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Validate, quarantine and publish a log (and its optional item side table) into ``raw``."""
    say = progress or (lambda _m: None)
    run_id = new_run_id()
    files = source_files(source, mapping.events.format)
    report = IngestReport(run_id, [str(f) for f in files])
    good: list[pd.DataFrame] = []
    bad: list[pd.DataFrame] = []
    for raw in _read_table(files, mapping.events, "events", tuple(OPTIONAL_EVENTS), report):
        parsed = parse_events(raw, mapping.events.time_unit)
        ok = (parsed.reasons == "").to_numpy()
        report.events_read += len(raw)
        _count(report.events_quarantined, parsed.reasons)
        good.append(parsed.frame[ok])
        if (~ok).any():
            bad.append(raw[~ok].assign(reason=parsed.reasons[~ok]))
    events = pd.concat(good, ignore_index=True) if good else pd.DataFrame(columns=EVENTS_SCHEMA.names)
    say(
        f"events: {report.events_read:,} read, {len(events):,} valid, "
        f"{sum(report.events_quarantined.values()):,} quarantined"
    )
    _quarantine(lake, "events", bad, run_id)

    items = _ingest_items(mapping, items_source, report, lake, run_id)
    first_seen = events.groupby("item_id")["ts"].min() if len(events) else pd.Series(dtype="datetime64[ns, UTC]")
    items = _complete_items(items, first_seen, report)

    events = events.sort_values(["ts", "request_id", "position"], kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(events, schema=EVENTS_SCHEMA, preserve_index=False, safe=False)
    hours = events["ts"].dt.strftime("%Y-%m-%d %H").to_numpy()
    for hour in pd.unique(hours):
        lo, hi = np.searchsorted(hours, hour, "left"), np.searchsorted(hours, hour, "right")
        dt, hh = str(hour).split(" ")
        lake.write_partition("raw", "events", {"dt": dt, "hour": hh}, table.slice(lo, hi - lo), run_id)
        report.partitions += 1
    report.events_written = len(events)
    items = items.sort_values("created_at", kind="stable").reset_index(drop=True)
    item_table = pa.Table.from_pandas(items, schema=ITEMS_SCHEMA, preserve_index=False, safe=False)
    days = items["created_at"].dt.strftime("%Y-%m-%d").to_numpy()
    for day in pd.unique(days):
        lo, hi = np.searchsorted(days, day, "left"), np.searchsorted(days, day, "right")
        lake.write_partition("raw", "items", {"dt": str(day)}, item_table.slice(lo, hi - lo), run_id)
        report.partitions += 1
    report.items_written = len(items)
    say(f"items: {report.items_written:,} listings ({report.items_derived_from_events:,} known only from events)")
    lake.write_json(lake.uri("raw", "_meta", "ingest", f"{run_id}.json"), report.as_dict())
    return report


def _ingest_items(
    mapping: Mapping, items_source: Path | None, report: IngestReport, lake: Lake, run_id: str
) -> pd.DataFrame:
    tm = mapping.items
    source = items_source or (tm.source if tm else None)
    empty = pd.DataFrame({c: pd.Series(dtype="string") for c in ("item_id", "seller_id", "category")})
    empty = empty.assign(
        price=pd.Series(dtype=float),
        image_quality=pd.Series(dtype=float),
        created_at=pd.Series(dtype="datetime64[ns, UTC]"),
    )
    if source is None:
        report.missing_optional_columns["items"] = ["(no item side table)"]
        return empty
    tm = tm or TableMapping({"item_id": "item_id"})
    good, bad = [], []
    for raw in _read_table(source_files(source, tm.format), tm, "items", OPTIONAL_ITEMS, report):
        parsed = parse_items(raw, tm.time_unit)
        ok = (parsed.reasons == "").to_numpy()
        report.items_read += len(raw)
        _count(report.items_quarantined, parsed.reasons)
        good.append(parsed.frame[ok])
        if (~ok).any():
            bad.append(raw[~ok].assign(reason=parsed.reasons[~ok]))
    _quarantine(lake, "items", bad, run_id)
    return pd.concat([empty, *good], ignore_index=True) if good else empty


def _complete_items(items: pd.DataFrame, first_seen: pd.Series, report: IngestReport) -> pd.DataFrame:
    """Listings referenced by events but absent from the side table get a row; a missing
    creation time becomes the first time the listing was shown (it existed by then)."""
    known = set(items["item_id"].dropna())
    extra = first_seen[~first_seen.index.isin(known)]
    report.items_derived_from_events = len(extra)
    if len(extra):
        added = pd.DataFrame({"item_id": pd.Series(extra.index, dtype="string"), "created_at": extra.to_numpy()})
        items = pd.concat([items, added], ignore_index=True)
    seen = items["item_id"].map(first_seen)
    created = pd.to_datetime(items["created_at"], utc=True)
    items["created_at"] = created.fillna(pd.to_datetime(seen, utc=True))
    # A listing cannot be shown before it exists: clamp creation to the first impression.
    late = seen.notna() & (items["created_at"] > seen)
    report.items_created_at_clamped = int(late.sum())
    items["created_at"] = items["created_at"].where(~late, pd.to_datetime(seen, utc=True))
    unknown = items["created_at"].isna()
    report.items_unusable = int(unknown.sum())  # never shown and no creation time: counted, not published
    items = items[~unknown]
    return items.reset_index(drop=True)
