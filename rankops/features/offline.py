"""The offline feature store: build it with Spark, read it back for materialization.

Layout: ``features/<feature_set>/<version>/<entity>/dt=YYYY-MM-DD/`` (by ``feature_ts``) with
one row per entity and change point (see :mod:`rankops.features.spark`), and a
``_meta/manifest.json`` per version describing what was computed from what.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.errors import LakeError
from rankops.features import registry
from rankops.lake import Lake, new_run_id

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from rankops.config import Settings


def computation_params(settings: Settings) -> dict[str, Any]:
    """The settings that change what a stored value means (part of the version hash)."""
    cfg = settings.features
    return {"position_bias_eta": cfg.position_bias_eta, "ctr_prior_strength": cfg.ctr_prior_strength}


def feature_set_version(settings: Settings) -> str:
    return registry.feature_set_version(computation_params(settings))


def key_column(entity: str) -> str:
    return registry.ENTITIES[entity].key


def dataset_name(settings: Settings, entity: str) -> str:
    return f"{settings.features.feature_set}/{feature_set_version(settings)}/{entity}"


def manifest_uri(lake: Lake, settings: Settings) -> str:
    return lake.uri("features", settings.features.feature_set, feature_set_version(settings), "_meta", "manifest.json")


@dataclass(frozen=True)
class BuildResult:
    version: str
    run_id: str
    rows: dict[str, int]
    partitions: int
    seconds: float


def build(spark: SparkSession, lake: Lake, settings: Settings, run_id: str | None = None) -> BuildResult:
    """Compute every stored feature from the raw zone and publish it atomically."""
    from pyspark.sql import functions as F

    from rankops.features import spark as fspark
    from rankops.spark_session import spark_uri

    started = time.perf_counter()
    run_id = run_id or new_run_id()
    events = fspark.read_committed(spark, lake, "raw", "events")
    items = fspark.read_committed(spark, lake, "raw", "items")
    rows: dict[str, int] = {}
    partitions = 0
    for entity in registry.stored_entities():
        frame = fspark.with_time_partitions(fspark.item_features(events, items, settings), "feature_ts")
        dataset = dataset_name(settings, entity)
        staged = lake.uri("features", dataset, "_staging", run_id)
        frame.repartition("dt").sortWithinPartitions(key_column(entity), "feature_ts").write.mode(
            "overwrite"
        ).partitionBy("dt").parquet(spark_uri(staged))
        committed = lake.commit_staged("features", dataset, staged, run_id)
        rows[entity] = sum(p.rows for p in committed)
        partitions += len(committed)
    bounds = events.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).first()
    assert bounds is not None
    lake.write_json(
        manifest_uri(lake, settings),
        {
            "feature_set": settings.features.feature_set,
            "version": feature_set_version(settings),
            "run_id": run_id,
            "entities": {e: [f.name for f in registry.stored_features(e)] for e in registry.stored_entities()},
            "computation": computation_params(settings),
            "rows": rows,
            "events_from": str(bounds["lo"]),
            "events_to": str(bounds["hi"]),
            "built_at": time.time(),
        },
    )
    return BuildResult(feature_set_version(settings), run_id, rows, partitions, time.perf_counter() - started)


def latest_values(lake: Lake, settings: Settings, entity: str, as_of: datetime | None = None) -> pa.Table:
    """Per entity, the stored feature values of its latest row at or before ``as_of``."""
    dataset = dataset_name(settings, entity)
    try:
        table = lake.read("features", dataset)
    except LakeError as err:
        raise LakeError(
            f"no offline features for {entity!r} at version {feature_set_version(settings)}; "
            "run `rankops features build` first"
        ) from err
    if as_of is not None:
        table = table.filter(pc.less_equal(table["feature_ts"], pa.scalar(as_of, pa.timestamp("us", tz="UTC"))))
    key = registry.ENTITIES[entity].key
    order = pc.sort_indices(table, [(key, "ascending"), ("feature_ts", "ascending")])
    table = table.take(order)
    keys = table[key].to_numpy(zero_copy_only=False)
    last = np.flatnonzero(np.append(keys[1:] != keys[:-1], True))
    names = [f.name for f in registry.stored_features(entity)]
    return table.take(pa.array(last)).select([key, "feature_ts", *names])
