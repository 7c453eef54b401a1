"""The latest snapshot (one row per key, its newest value as of the published-through time) and
reading the offline store back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.errors import LakeError
from rankops.features import registry
from rankops.lake import Lake, Partition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from rankops.config import Settings
from rankops.features.offline.names import (
    LATEST_PARTITION,
    dataset_name,
    empty_table,
    feature_set_version,
    key_column,
    latest_dataset_name,
    manifest_uri,
    read_manifest,
)
from rankops.features.offline.windows import TimeWindow


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
            lake.write_partition("features", dataset, LATEST_PARTITION, empty_table(entity).select(columns), run_id)
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


def latest_values(
    lake: Lake, settings: Settings, entity: str, before: datetime | None = None, by_key: bool = True
) -> pa.Table:
    """Per entity, its latest published row with ``feature_ts <= before`` (default: the
    end of the published data), sorted by key: what the online store should serve now.

    Reads only the columns it returns, skips day partitions after ``before`` (and row
    groups whose times are all later), and picks each key's newest row with one integer
    sort over (key code, time): no sort of the string keys of the whole history.

    At the published end (``before`` omitted or equal to it) this reads the entity's latest
    snapshot (one row per key, see :func:`write_latest`) when the manifest's last run
    committed it; otherwise it reads the history. Both give the same table. ``by_key=False``: the
    same rows in any order (materialization does not need them sorted: sorting the snapshot's
    string keys was a tenth of materializing the items into Redis)."""
    uri = manifest_uri(lake, settings)
    manifest = read_manifest(lake, settings) if before is None else (lake.read_json(uri) if lake.exists(uri) else {})
    through = manifest.get("published_through")
    if before is None:
        before = datetime.fromisoformat(through)  # type: ignore[arg-type]  # read_manifest requires it
    if through and before == datetime.fromisoformat(through):
        snapshot = _latest_from_snapshot(lake, settings, entity, manifest, by_key)
        if snapshot is not None:
            return snapshot
    return _latest_from_history(lake, settings, entity, before)


def _latest_from_snapshot(
    lake: Lake, settings: Settings, entity: str, manifest: dict[str, Any], by_key: bool = True
) -> pa.Table | None:
    """The committed latest snapshot (sorted by key unless ``by_key`` is false), or None when it is not current."""
    snapshot = _current_snapshot(lake, settings, entity, manifest)
    if snapshot is None:
        return None
    table = lake.read("features", latest_dataset_name(settings, entity), _latest_columns(entity), [snapshot])
    required = set((manifest["latest_snapshot"].get("not_null") or {}).get(entity, []))
    table = table.cast(pa.schema([f.with_nullable(f.name not in required) for f in table.schema]))
    return table.take(pc.sort_indices(table[key_column(entity)])) if by_key else table


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
        return empty_table(entity).select(columns)
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
