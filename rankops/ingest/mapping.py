"""The YAML mapping of ``rankops ingest``: which column of your file holds each column of the
raw schema (docs/schema.md), checked before anything is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rankops.errors import DataError

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
