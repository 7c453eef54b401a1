"""A feature run: the Spark build over a window, validation, and publication (the manifest and
freshness status)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rankops.errors import DataError, ValidationFailed
from rankops.features import registry, validation
from rankops.lake import Lake, new_run_id

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from rankops.config import Settings
from rankops.features.offline.latest import write_latest
from rankops.features.offline.names import (
    HOUR,
    computation_params,
    dataset_name,
    empty_table,
    feature_set_version,
    key_column,
    manifest_uri,
    meta_uri,
)
from rankops.features.offline.windows import TimeWindow, event_partitions, resolve_window


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

    def summary(self) -> dict[str, Any]:
        """What a job prints as its last line: the version, run, window, sizes and report."""
        return {
            "version": self.version,
            "run_id": self.run_id,
            "window": self.window.as_dict(),
            "rows": self.rows,
            "events": self.events,
            "latest_snapshot": self.latest,
            "seconds": round(self.seconds, 1),
            "report": self.report_uri,
        }


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
    parts = event_partitions(lake, window.start - lookback, window.end)
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
                lake.write_partition("features", dataset, stale.values, empty_table(entity), run_id)
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
