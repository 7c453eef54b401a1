"""Reading log files in batches and parsing them into the raw schema, each rejected row with
its reason (the quarantine's ``reason`` column)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rankops.errors import DataError
from rankops.ingest.mapping import BATCH_ROWS, FALSE, REQUIRED_EVENTS, TRUE

# -- reading ---------------------------------------------------------------------------------
MALFORMED_ROW = "malformed CSV row (wrong number of fields)"


def source_files(source: Path, fmt: str | None, flag: str = "--source") -> list[Path]:
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in (".csv", ".parquet"))
    elif source.is_file():
        files = [source]
    else:
        raise DataError(f"{flag} {source} does not exist")
    if not files:
        raise DataError(f"{flag} {source}: no .csv or .parquet files under it")
    return files


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _kind(path: Path, fmt: str | None) -> str:
    return fmt or ("parquet" if path.suffix.lower() == ".parquet" else "csv")


def _skip_row(_row: Any) -> str:
    return "skip"


def read_batches(
    path: Path, wanted: list[str], fmt: str | None, malformed: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The wanted columns of one file, as strings (CSV) or native types (Parquet), in batches.

    A CSV row with too many or too few fields is not a batch row: its text is appended
    to ``malformed`` (to be quarantined by the caller). A file that cannot be read at all
    is a ``DataError`` naming it."""
    kind = _kind(path, fmt)
    try:
        if kind == "parquet":
            parquet = pq.ParquetFile(path)
            present = [c for c in wanted if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
                yield batch.to_pandas()
            return
        header = _csv_header(path)
        present = [c for c in wanted if c in header]
        convert = pacsv.ConvertOptions(
            include_columns=present, column_types=dict.fromkeys(present, pa.string()), strings_can_be_null=True
        )

        def invalid(row: Any) -> str:
            if malformed is not None:
                malformed.append(str(row.text))
            return "skip"

        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
            convert_options=convert,
        )
        for batch in reader:
            yield batch.to_pandas()
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read it as {kind}: {_one_line(err)}") from err


def _csv_header(path: Path) -> list[str]:
    return list(pacsv.open_csv(path, parse_options=pacsv.ParseOptions(invalid_row_handler=_skip_row)).schema.names)


def file_columns(path: Path, fmt: str | None) -> list[str]:
    kind = _kind(path, fmt)
    try:
        return list(pq.ParquetFile(path).schema_arrow.names) if kind == "parquet" else _csv_header(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read it as {kind}: {_one_line(err)}") from err


# -- parsing with reasons --------------------------------------------------------------------
@dataclass
class Parsed:
    frame: pd.DataFrame
    reasons: pd.Series  # "" where the row is valid


def flag(reasons: pd.Series, bad: pd.Series | np.ndarray, reason: str) -> None:
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
        flag(reasons, raw[col].isna(), f"missing {col}")
    ts = _timestamps(raw["ts"], unit)
    flag(reasons, ts.isna(), "ts is not a time")
    position, bad_pos = _numbers(raw["position"])
    flag(
        reasons, bad_pos | (position < 1) | (position > 32_767) | (position % 1 != 0), "position is not an integer >= 1"
    )
    clicked, bad_click = _booleans(raw["clicked"])
    flag(reasons, bad_click, "clicked is not a boolean")
    contacted, bad_contact = (
        _booleans(raw["contacted"])
        if "contacted" in raw
        else (pd.Series(False, index=raw.index), pd.Series(False, index=raw.index))
    )
    flag(reasons, bad_contact, "contacted is not a boolean")
    flag(reasons, contacted & ~clicked, "contacted without a click")
    if "revenue" in raw:
        revenue, bad_rev = _numbers(raw["revenue"])
        flag(reasons, bad_rev | (revenue < 0), "revenue is not a number >= 0")
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
    flag(reasons, raw["item_id"].isna(), "missing item_id")
    flag(reasons, raw["item_id"].duplicated(keep="first") & raw["item_id"].notna(), "duplicate item_id")
    cols: dict[str, Any] = {"item_id": raw["item_id"].astype("string")}
    for col in ("seller_id", "category"):
        cols[col] = raw[col].astype("string") if col in raw else pd.Series(pd.NA, index=raw.index, dtype="string")
    price, bad_price = (
        _numbers(raw["price"])
        if "price" in raw
        else (pd.Series(np.nan, index=raw.index), pd.Series(False, index=raw.index))
    )
    flag(reasons, bad_price | (price < 0), "price is not a number >= 0")
    quality, bad_q = (
        _numbers(raw["image_quality"])
        if "image_quality" in raw
        else (pd.Series(np.nan, index=raw.index), pd.Series(False, index=raw.index))
    )
    flag(reasons, bad_q | (quality < 0) | (quality > 1), "image_quality is not in [0, 1]")
    created = (
        _timestamps(raw["created_at"], unit)
        if "created_at" in raw
        else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    )
    if "created_at" in raw:
        flag(reasons, created.isna() & raw["created_at"].notna(), "created_at is not a time")
    cols.update({"price": price.astype(np.float64), "image_quality": quality.astype(np.float64), "created_at": created})
    return Parsed(pd.DataFrame(cols), reasons)
