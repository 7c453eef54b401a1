"""The offline feature store: build it with Spark (incrementally or as a backfill),
validate before publishing, read it back for materialization.

Layout: ``features/<feature_set>/<version>/<entity>/dt=YYYY-MM-DD/`` (by ``feature_ts``),
one row per entity and change point (see :mod:`rankops.features.spark`), plus
``<version>/_meta/manifest.json`` (what is published: through which time, from what)
and ``<version>/_meta/runs/<run_id>.json`` (one validation report per run, published
or rejected), and ``<version>/_latest/<entity>/as_of=latest/``: the *latest snapshot*,
one row per key, its newest value as of the published-through time (what
materialization reads instead of the history, see :func:`write_latest`).

A run computes the change points in a time window ``(start, end]`` (hour-aligned:
the run for the hour 12:00-13:00 emits the values that become true up to and at
13:00, when that hour's events become visible), reading the events before ``end``
back to the longest feature window before ``start`` (the look-back) and the whole
catalog. A day partition the window touches is rewritten
with the rows of that day outside the window kept, so hourly runs and a backfill
over the same hours give the same rows. Nothing is committed unless every entity
passes validation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.errors import DataError, LakeError, ValidationFailed
from rankops.features import registry, validation
from rankops.lake import Lake, Partition, new_run_id

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from rankops.config import Settings

HOUR = timedelta(hours=1)


def computation_params(settings: Settings) -> dict[str, Any]:
    """The settings that change what a stored value means (part of the version hash)."""
    cfg = settings.features
    return {
        "position_bias_eta": cfg.position_bias_eta,
        "ctr_prior_strength": cfg.ctr_prior_strength,
        "contact_prior_strength": cfg.contact_prior_strength,
    }


def feature_set_version(settings: Settings) -> str:
    return registry.feature_set_version(computation_params(settings))


def key_column(entity: str) -> str:
    return registry.ENTITIES[entity].key


def dataset_name(settings: Settings, entity: str) -> str:
    return f"{settings.features.feature_set}/{feature_set_version(settings)}/{entity}"


LATEST_PARTITION = {"as_of": "latest"}


def latest_dataset_name(settings: Settings, entity: str) -> str:
    """The entity's latest snapshot: one fixed partition, replaced atomically by each run."""
    return f"{settings.features.feature_set}/{feature_set_version(settings)}/_latest/{entity}"


def meta_uri(lake: Lake, settings: Settings, *parts: str) -> str:
    return lake.uri("features", settings.features.feature_set, feature_set_version(settings), "_meta", *parts)


def manifest_uri(lake: Lake, settings: Settings) -> str:
    return meta_uri(lake, settings, "manifest.json")


def read_manifest(lake: Lake, settings: Settings) -> dict[str, Any]:
    uri = manifest_uri(lake, settings)
    if not lake.exists(uri):
        raise LakeError(
            f"no published features for version {feature_set_version(settings)}; run `rankops features build` first"
        )
    manifest: dict[str, Any] = lake.read_json(uri)
    return manifest


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


def _event_partitions(lake: Lake, start: datetime, end: datetime) -> list[Partition]:
    return [p for p in lake.partitions("raw", "events") if start <= _partition_hour(p) < end]


# -- build -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildResult:
    version: str
    run_id: str
    window: TimeWindow
    rows: dict[str, int]
    partitions: int
    seconds: float
    report_uri: str
    events: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, str] = field(default_factory=dict)  # entity -> how its latest snapshot was built


def _days(window: TimeWindow) -> list[str]:
    """Day partitions holding feature times in ``(start, end]``."""
    day = window.start.replace(hour=0)
    out = []
    while day <= window.end:
        out.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    return out


def _previous_rows(lake: Lake, settings: Settings, window: TimeWindow) -> dict[str, int]:
    """Row counts of the newest published run with a comparable window."""
    fs, base = lake.filesystem(meta_uri(lake, settings, "runs"))
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    for info in sorted(infos, key=lambda i: i.base_name, reverse=True):
        if not info.base_name.endswith(".json"):
            continue
        report = lake.read_json(meta_uri(lake, settings, "runs", info.base_name))
        if report.get("status") == "published" and report.get("comparable") == window.comparable_key():
            return {e: int(n) for e, n in report.get("rows", {}).items()}
    return {}


def _stage(
    spark: SparkSession, lake: Lake, settings: Settings, entity: str, rows: DataFrame, window: TimeWindow, run_id: str
) -> tuple[str, dict[str, Any]]:
    """Write the window's rows, plus the kept rows of touched days, to a staging folder;
    the validation statistics of the window's rows are observed during that write."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from rankops.features import spark as fspark
    from rankops.spark_session import write_parquet

    dataset = dataset_name(settings, entity)
    days = set(_days(window))
    existing = (
        [] if window.backfill else [p for p in lake.partitions("features", dataset) if p.values.get("dt") in days]
    )
    observation = Observation(f"validation-{entity}")
    observed = rows.observe(observation, *validation.stats_columns(entity))
    flags = [c for c in rows.columns if c.startswith(fspark.MISSING_PREFIX)]
    published = rows.drop(*flags)
    frame = fspark.with_time_partitions(observed.drop(*flags), "feature_ts")
    if existing:
        kept = fspark.read_committed(spark, lake, "features", dataset, existing).where(
            (F.col("feature_ts") <= F.lit(window.start)) | (F.col("feature_ts") > F.lit(window.end))
        )
        frame = frame.unionByName(kept.select(*frame.columns))
    staged = lake.uri("features", dataset, "_staging", run_id)
    # No shuffle by day: each task writes its rows (already sorted by key and time by the
    # window) into the day folders they belong to.
    write_parquet(frame, staged, "dt")
    return staged, validation.stats_from(dict(observation.get), published.schema, entity)


def build(
    spark: SparkSession,
    lake: Lake,
    settings: Settings,
    window: TimeWindow | None = None,
    run_id: str | None = None,
) -> BuildResult:
    """Compute every stored feature for ``window`` (default: backfill everything),
    validate, and publish atomically per partition; raises ``ValidationFailed`` (and
    publishes nothing) if any check fails."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from rankops.features import spark as fspark

    started = time.perf_counter()
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # not INT96: typed, tz-aware
    run_id = run_id or new_run_id()
    window = window or resolve_window(lake)
    version = feature_set_version(settings)
    lookback = registry.max_window() + HOUR
    parts = _event_partitions(lake, window.start - lookback, window.end)
    if not parts:
        raise DataError(
            f"no committed events between {(window.start - lookback).isoformat()} and {window.end.isoformat()}"
        )
    events = fspark.read_committed(spark, lake, "raw", "events", parts).where(
        (F.col("ts") >= F.lit(window.start - lookback)) & (F.col("ts") < F.lit(window.end))
    )
    cat = fspark.catalog(fspark.read_committed(spark, lake, "raw", "items")).persist(StorageLevel.MEMORY_AND_DISK)
    hourly = fspark.item_hourly(events, settings.features.position_bias_eta).persist(StorageLevel.MEMORY_AND_DISK)
    start_ms, end_ms = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
    overview = hourly.agg(F.sum("impressions").alias("events"), F.max("t").alias("visible")).first()
    n_events = int(overview["events"] or 0) if overview else 0
    visible = overview["visible"] if overview else None
    lag_s = (end_ms - visible) / 1000 if visible is not None else None

    report = validation.Report()
    previous = _previous_rows(lake, settings, window)
    staged: dict[str, str] = {}
    stats: dict[str, dict[str, Any]] = {}
    try:
        for entity in registry.stored_entities():
            rows = fspark.entity_features(entity, hourly, cat, settings, start_ms, end_ms, with_missing=True)
            staged[entity], stats[entity] = _stage(spark, lake, settings, entity, rows, window, run_id)
            validation.evaluate(entity, stats[entity], settings.features, previous.get(entity), lag_s, report)
    finally:
        hourly.unpersist()
        cat.unpersist()

    rows_by_entity = {e: s["rows"] for e, s in stats.items()}
    checks = [c.as_dict() for c in report.checks]
    report_doc: dict[str, Any] = {
        "run_id": run_id,
        "feature_set": settings.features.feature_set,
        "version": version,
        "window": window.as_dict(),
        "comparable": window.comparable_key(),
        "lookback_hours": lookback / HOUR,
        "events_read": n_events,
        "freshness_lag_hours": None if lag_s is None else lag_s / 3600,
        "rows": rows_by_entity,
        "stats": stats,
        "checks": checks,
        "status": "published" if report.ok else "rejected",
        "failures": [c.as_dict() for c in report.failures],
        "finished_at": datetime.now(UTC).isoformat(),
    }
    report_uri = meta_uri(lake, settings, "runs", f"{run_id}.json")
    if not report.ok:
        for uri in staged.values():
            fs, path = lake.filesystem(uri)
            fs.delete_dir_contents(path, missing_dir_ok=True)
        lake.write_json(report_uri, report_doc)
        _publish_status(lake, settings, report_doc, report_uri)
        raise ValidationFailed(f"features not published, validation failed: {report.summary()} (report: {report_uri})")

    partitions = 0
    for entity, uri in staged.items():
        dataset = dataset_name(settings, entity)
        committed = lake.commit_staged("features", dataset, uri, run_id)
        written = {p.values["dt"] for p in committed}
        for stale in [p for p in lake.partitions("features", dataset) if p.values["dt"] in set(_days(window))]:
            if stale.values["dt"] not in written:  # the day now has no rows at all: publish it empty
                lake.write_partition("features", dataset, stale.values, _empty(entity), run_id)
        partitions += len(committed)
    manifest_path = manifest_uri(lake, settings)
    previous = lake.read_json(manifest_path) if lake.exists(manifest_path) else {}
    through = _published_through(previous, window)
    try:
        latest = write_latest(spark, lake, settings, run_id, through, window, previous)
    except Exception as err:  # no snapshot is safe (readers fall back to the history): record, go on
        latest = {}
        report_doc["latest_snapshot_error"] = f"{type(err).__name__}: {err}"
    report_doc["latest_snapshot"] = latest
    _publish_manifest(lake, settings, window, run_id, rows_by_entity, through, latest)
    lake.write_json(report_uri, report_doc)
    _publish_status(lake, settings, report_doc, report_uri)
    return BuildResult(
        version,
        run_id,
        window,
        rows_by_entity,
        partitions,
        time.perf_counter() - started,
        report_uri,
        n_events,
        checks,
        {e: str(v["mode"]) for e, v in latest.items()},
    )


def status_uri(lake: Lake, settings: Settings) -> str:
    """``features/<feature_set>/_meta/status.json``: a version-independent pointer to the live
    feature set and the outcome of its latest run (what the pipeline's freshness check reads)."""
    return lake.uri("features", settings.features.feature_set, "_meta", "status.json")


def _publish_status(lake: Lake, settings: Settings, report: dict[str, Any], report_uri: str) -> None:
    manifest_path = manifest_uri(lake, settings)
    manifest = lake.read_json(manifest_path) if lake.exists(manifest_path) else {}
    slas = {
        f.name: f.freshness_sla.total_seconds() / 3600
        for f in registry.FEATURES
        if f.kind not in ("on_demand", "stream")
    }
    lake.write_json(
        status_uri(lake, settings),
        {
            "feature_set": settings.features.feature_set,
            "version": feature_set_version(settings),
            "published_through": manifest.get("published_through"),
            "max_lag_hours": min(slas.values()),
            "last_run": {k: report[k] for k in ("run_id", "status", "failures", "finished_at", "window")},
            "last_run_report": report_uri,
        },
    )


def _empty(entity: str) -> pa.Table:
    key = registry.ENTITIES[entity].key
    fields = [(key, pa.string()), ("feature_ts", pa.timestamp("us", tz="UTC"))]
    fields += [(j, pa.string()) for j in registry.join_keys(entity)]
    fields += [(n, pa.float64()) for n in registry.stored_names(entity)]
    return pa.schema(fields).empty_table()


def _published_through(previous: dict[str, Any], window: TimeWindow) -> str:
    """A backfill publishes through its end; any other run never moves the end back."""
    through = window.end.isoformat()
    if previous.get("published_through") and not window.backfill:
        through = max(previous["published_through"], through)
    return through


def _publish_manifest(
    lake: Lake,
    settings: Settings,
    window: TimeWindow,
    run_id: str,
    rows: dict[str, int],
    through: str,
    latest: dict[str, dict[str, Any]] | None = None,
) -> None:
    uri = manifest_uri(lake, settings)
    lake.write_json(
        uri,
        {
            "feature_set": settings.features.feature_set,
            "version": feature_set_version(settings),
            "entities": {
                e: {"key": key_column(e), "joins": registry.join_keys(e), "features": registry.stored_names(e)}
                for e in registry.stored_entities()
            },
            "declarations": registry.declarations(),
            "computation": computation_params(settings),
            "published_through": through,
            "last_run": {"run_id": run_id, "window": window.as_dict(), "rows": rows},
            # Present only when this run committed every entity's latest snapshot as of ``through``.
            "latest_snapshot": (
                {
                    "run_id": run_id,
                    "published_through": through,
                    "not_null": {e: v["not_null"] for e, v in latest.items()},
                }
                if latest
                else None
            ),
            "published_at": time.time(),
        },
    )


# -- the latest snapshot -----------------------------------------------------------------------
def _current_snapshot(lake: Lake, settings: Settings, entity: str, manifest: dict[str, Any]) -> Partition | None:
    """The entity's committed snapshot if it belongs to the manifest's last run and was built
    as of its published-through time (a run that died between its commits fails this)."""
    marker = manifest.get("latest_snapshot") or {}
    run_id = marker.get("run_id")
    if not run_id or run_id != (manifest.get("last_run") or {}).get("run_id"):
        return None
    if not manifest.get("published_through") or marker.get("published_through") != manifest["published_through"]:
        return None
    parts = lake.partitions("features", latest_dataset_name(settings, entity))
    if len(parts) == 1 and parts[0].values == LATEST_PARTITION and parts[0].run_id == run_id:
        return parts[0]
    return None


def _latest_columns(entity: str) -> list[str]:
    return [key_column(entity), "feature_ts", *registry.join_keys(entity), *registry.stored_names(entity)]


def write_latest(
    spark: SparkSession,
    lake: Lake,
    settings: Settings,
    run_id: str,
    through: str,
    window: TimeWindow | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Commit every stored entity's latest snapshot as of ``through`` under ``run_id``, from
    the *committed* history (call it after the run's partitions are committed, before the
    manifest names the run). Returns, per entity, ``mode`` (``"incremental"`` or ``"full"``)
    and ``not_null``: the columns the history's files declare non-nullable (Spark reads
    every column as nullable; readers restore the history's schema with it).

    Incremental: the previous snapshot (current for the ``previous`` manifest) union the
    history rows with ``previous through < feature_ts <= through`` (the run's rows, plus any
    rows already stored past the previous end), newest row per key. That equals the newest
    row of the whole history only if the run changed nothing at or before the previous end,
    so a backfill, a re-run of a window that starts before the previous end, or a missing or
    stale snapshot rebuilds it from the full history instead (correct, but it reads it all).
    Spark-native: a window over the key, no UDF, no collect."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from rankops.features import spark as fspark
    from rankops.spark_session import write_parquet

    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # as the history's
    previous = previous or {}
    end = datetime.fromisoformat(through)
    prev_end = previous.get("published_through")
    since = datetime.fromisoformat(prev_end) if prev_end else None
    reusable = window is not None and not window.backfill and since is not None and window.start >= since
    out: dict[str, dict[str, Any]] = {}
    for entity in registry.stored_entities():
        key, columns = key_column(entity), _latest_columns(entity)
        incremental = reusable and _current_snapshot(lake, settings, entity, previous) is not None
        lower = since if incremental else None
        # dt is the UTC day of feature_ts; a day of margin either side as in latest_values.
        first_day = (lower - timedelta(days=1)).strftime("%Y-%m-%d") if lower else ""
        last_day = (end + timedelta(days=1)).strftime("%Y-%m-%d")
        history_parts = lake.partitions("features", dataset_name(settings, entity))
        parts = [p for p in history_parts if first_day <= p.values.get("dt", "") <= last_day and p.rows > 0]
        inputs = []
        if parts:
            history = fspark.read_committed(spark, lake, "features", dataset_name(settings, entity), parts)
            cond = (F.col("feature_ts") <= F.lit(end)) & F.col(key).isNotNull()
            if lower is not None:
                cond = cond & (F.col("feature_ts") > F.lit(lower))
            inputs.append(history.where(cond).select(*columns))
        if incremental:
            inputs.append(
                fspark.read_committed(spark, lake, "features", latest_dataset_name(settings, entity)).select(*columns)
            )
        dataset = latest_dataset_name(settings, entity)
        committed = []
        if inputs:
            rows = inputs[0]
            for other in inputs[1:]:
                rows = rows.unionByName(other)
            newest = Window.partitionBy(key).orderBy(F.col("feature_ts").desc())
            latest = (
                rows.withColumn("__rank", F.row_number().over(newest))
                .where(F.col("__rank") == 1)
                .drop("__rank")
                .withColumn("as_of", F.lit(LATEST_PARTITION["as_of"]))
                .sortWithinPartitions(key)
            )
            staged = lake.uri("features", dataset, "_staging", run_id)
            write_parquet(latest, staged, "as_of")
            committed = lake.commit_staged("features", dataset, staged, run_id)
        if not committed:  # no rows at all: publish the snapshot empty, never leave an old one
            lake.write_partition("features", dataset, LATEST_PARTITION, _empty(entity).select(columns), run_id)
        out[entity] = {
            "mode": "incremental" if incremental else "full",
            "not_null": _not_null(lake, dataset_name(settings, entity), history_parts[:1], columns),
        }
    return out


def _not_null(lake: Lake, dataset: str, parts: list[Partition], columns: list[str]) -> list[str]:
    """Non-nullable columns of the first committed file (the schema a history read takes)."""
    import pyarrow.parquet as pq

    files = lake.files("features", dataset, parts) if parts else []
    if not files:
        return []
    fs, path = lake.filesystem(files[0])
    schema = pq.read_schema(path, filesystem=fs)
    return [c for c in columns if c in schema.names and not schema.field(c).nullable]


# -- reading back ----------------------------------------------------------------------------
def read_offline(spark: SparkSession, lake: Lake, settings: Settings) -> dict[str, DataFrame]:
    """Every entity's published offline rows as Spark frames (for point-in-time joins)."""
    from rankops.features import spark as fspark

    read_manifest(lake, settings)  # fail with a clear message if nothing was published
    return {
        e: fspark.read_committed(spark, lake, "features", dataset_name(settings, e)) for e in registry.stored_entities()
    }


def latest_values(lake: Lake, settings: Settings, entity: str, before: datetime | None = None) -> pa.Table:
    """Per entity, its latest published row with ``feature_ts <= before`` (default: the
    end of the published data), sorted by key: what the online store should serve now.

    Reads only the columns it returns, skips day partitions after ``before`` (and row
    groups whose times are all later), and picks each key's newest row with one integer
    sort over (key code, time): no sort of the string keys of the whole history.

    At the published end (``before`` omitted or equal to it) this reads the entity's latest
    snapshot (one row per key, see :func:`write_latest`) when the manifest's last run
    committed it; otherwise it reads the history. Both give the same table."""
    uri = manifest_uri(lake, settings)
    manifest = read_manifest(lake, settings) if before is None else (lake.read_json(uri) if lake.exists(uri) else {})
    through = manifest.get("published_through")
    if before is None:
        before = datetime.fromisoformat(through)  # type: ignore[arg-type]  # read_manifest requires it
    if through and before == datetime.fromisoformat(through):
        snapshot = _latest_from_snapshot(lake, settings, entity, manifest)
        if snapshot is not None:
            return snapshot
    return _latest_from_history(lake, settings, entity, before)


def _latest_from_snapshot(lake: Lake, settings: Settings, entity: str, manifest: dict[str, Any]) -> pa.Table | None:
    """The committed latest snapshot, sorted by key, or None when it is not current."""
    snapshot = _current_snapshot(lake, settings, entity, manifest)
    if snapshot is None:
        return None
    table = lake.read("features", latest_dataset_name(settings, entity), _latest_columns(entity), [snapshot])
    required = set((manifest["latest_snapshot"].get("not_null") or {}).get(entity, []))
    table = table.cast(pa.schema([f.with_nullable(f.name not in required) for f in table.schema]))
    return table.take(pc.sort_indices(table[key_column(entity)]))


def _latest_from_history(lake: Lake, settings: Settings, entity: str, before: datetime) -> pa.Table:
    """Each key's newest row with ``feature_ts <= before``, from the whole history."""
    dataset = dataset_name(settings, entity)
    parts = lake.partitions("features", dataset)
    if not parts:
        raise LakeError(
            f"no offline features for {entity!r} at version {feature_set_version(settings)}; "
            "run `rankops features build` first"
        )
    key = key_column(entity)
    columns = _latest_columns(entity)
    # dt is the UTC day of feature_ts; a day of margin keeps this right whatever the writer's zone.
    last_day = (before.astimezone(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    parts = [p for p in parts if p.values.get("dt", "") <= last_day]
    if not parts:
        return _empty(entity).select(columns)
    table = lake.read("features", dataset, columns=columns, partitions=parts)
    ts = table["feature_ts"]
    limit = pa.scalar(
        before if ts.type.tz else before.astimezone(UTC).replace(tzinfo=None), pa.timestamp("us", ts.type.tz)
    )
    table = table.filter(pc.and_(pc.less_equal(ts, pc.cast(limit, ts.type)), pc.is_valid(table[key])))
    if table.num_rows == 0:
        return table
    encoded = pc.dictionary_encode(table[key].combine_chunks())
    rank = np.empty(len(encoded.dictionary), dtype=np.int64)  # dictionary code -> position in key order
    rank[pc.array_sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(rank))
    codes = rank[encoded.indices.to_numpy()]
    times = table["feature_ts"].combine_chunks().cast(pa.int64()).to_numpy()
    order = np.lexsort((times, codes))  # by key, then time; stable
    sorted_codes = codes[order]
    last = order[np.flatnonzero(np.append(sorted_codes[1:] != sorted_codes[:-1], True))]
    return table.take(pa.array(last, pa.int64()))
