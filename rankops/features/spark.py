"""Spark transforms compiled from the registry's declarations.

Point-in-time semantics: a feature row stamped ``feature_ts = t`` uses only
behaviour that was complete before ``t`` (events are bucketed by hour and an
hour's events become visible when the hour ends) and catalog facts known at
``t`` (a listing exists from its creation on). Values are emitted at *change
points* only: the end of every hour with events, that hour plus each window
length (the events expire), and every listing creation that touches the entity.
Between two change points nothing changes, so an as-of lookup of the latest row
at or before any time gives the exact value at that time, with no dense
entity x hour grid (we keep this design from the foundation: for sparse click
logs it is 10-100x fewer rows than hourly snapshots, and it is exact).

Every sum is an integer sum (counts, and fixed-point examination weights and
prices), so results do not depend on how Spark splits or orders the work: an
incremental run over a window equals a full backfill over it, bit for bit, and
the online store can be compared to the offline store exactly.

All of it is Spark-native: no Python UDFs, no ``collect`` of data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankops.errors import LakeError
from rankops.features import registry
from rankops.lake import Lake, Partition
from rankops.spark_session import readable_uris

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyspark.sql import Column, DataFrame, SparkSession

    from rankops.config import Settings

HOUR_MS = 3_600_000
EXAM_SCALE = 1_000_000_000  # examination weights as integer nano-units: exact, order-free sums
PRICE_SCALE = 10_000
LOG_SCALE = 1_000_000_000
MEASURES = ("impressions", "clicks", "examinations", "contacts")


def read_committed(
    spark: SparkSession, lake: Lake, zone: str, dataset: str, partitions: Iterable[Partition] | None = None
) -> DataFrame:
    """Read only the committed files of a lake dataset (optionally some partitions), keeping partition columns."""
    files = lake.files(zone, dataset, partitions)  # type: ignore[arg-type]
    if not files:
        raise LakeError(f"{lake.uri(zone, dataset)} has no committed data; run the stage that writes it")  # type: ignore[arg-type]
    base, readable = readable_uris(spark, lake.uri(zone, dataset), files)  # type: ignore[arg-type]
    if "://" not in base.replace("file://", ""):
        # Local files named one by one need no distributed listing job (it costs seconds per read).
        spark.conf.set("spark.sql.sources.parallelPartitionDiscovery.threshold", str(max(32, len(files) + 1)))
    return spark.read.option("basePath", base).parquet(*readable)


# -- inputs -----------------------------------------------------------------------------------
def catalog(items: DataFrame) -> DataFrame:
    """The catalog with every column a declaration can name (plus fixed-point sum inputs)."""
    from pyspark.sql import functions as F

    price = F.col("price").cast("double")
    log_price = F.when(price > 0, F.log(price))
    return items.select(
        "item_id",
        "seller_id",
        "category",
        (F.unix_millis(F.col("created_at").cast("timestamp"))).alias("created_ms"),
        price.alias("price"),
        log_price.alias("log_price"),
        F.col("image_quality").cast("double").alias("image_quality"),
        (F.unix_millis(F.col("created_at").cast("timestamp")) / 1000.0).alias("created_at_s"),
        F.when(F.col("category").isNotNull(), F.crc32(F.col("category")).cast("double")).alias("category_code"),
        F.round(price * PRICE_SCALE).cast("long").alias("price_fp"),
        F.round(log_price * LOG_SCALE).cast("long").alias("log_price_fp"),
        F.round(log_price * log_price * LOG_SCALE).cast("long").alias("log_price_sq_fp"),
    )


def item_hourly(events: DataFrame, eta: float) -> DataFrame:
    """Per item and hour (stamped at the hour's *end*, when its events become visible):
    impressions, clicks, contacts and fixed-point expected examinations."""
    from pyspark.sql import functions as F

    exam = F.round(F.pow(F.col("position").cast("double"), F.lit(-eta)) * EXAM_SCALE).cast("long")
    contacted = F.col("contacted") if "contacted" in events.columns else F.lit(False)
    return (
        events.withColumn("t", (F.floor(F.unix_millis(F.col("ts")) / HOUR_MS) + 1) * HOUR_MS)
        .groupBy("item_id", "t")
        .agg(
            F.count(F.lit(1)).alias("impressions"),
            F.sum(F.col("clicked").cast("long")).alias("clicks"),
            F.sum(exam).alias("examinations"),
            F.sum(F.coalesce(contacted, F.lit(False)).cast("long")).alias("contacts"),
        )
    )


def entity_hourly(hourly: DataFrame, cat: DataFrame, entity: str) -> DataFrame:
    """Roll the item-hour facts up to ``entity`` (exact: integer sums)."""
    from pyspark.sql import functions as F

    key = registry.ENTITIES[entity].key
    if key == "item_id":
        return hourly
    keyed = hourly.join(cat.select("item_id", key), "item_id", "inner").where(F.col(key).isNotNull())
    return keyed.groupBy(key, "t").agg(*[F.sum(m).alias(m) for m in MEASURES])


# -- compilation of the declarations ---------------------------------------------------------
def _ms(window: object) -> int:
    return int(window.total_seconds() * 1000)  # type: ignore[attr-defined]


def _delta(measure: str, window_ms: int) -> str:
    return f"__d_{measure}_{window_ms}"


def _windowed(measure: str, window_ms: int) -> str:
    return f"__{measure}_{window_ms}"


def _scaled(measure: str, window_ms: int) -> Column:
    from pyspark.sql import functions as F

    total = F.coalesce(F.col(_windowed(measure, window_ms)), F.lit(0))
    return total / F.lit(float(EXAM_SCALE)) if measure == "examinations" else total.cast("double")


MISSING_PREFIX = "__missing_"


def missing_column(name: str) -> str:
    """Name of the flag column :func:`entity_features` adds (``with_missing=True``): the
    feature had no value and its default was filled in."""
    return f"{MISSING_PREFIX}{name}"


def _value(f: registry.Feature, settings: Settings) -> Column:
    """One declared feature, its default filled in where it has no value."""
    from pyspark.sql import functions as F

    return F.coalesce(_raw_value(f, settings), F.lit(f.default)).alias(f.name)


def _raw_value(f: registry.Feature, settings: Settings) -> Column:
    """The Spark expression of one declared feature over the windowed/cumulative columns
    (null where it has no value: a catalog attribute that is missing, a mean of nothing)."""
    from pyspark.sql import functions as F

    spec = f.compute
    if isinstance(spec, registry.WindowSum):
        value = _scaled(spec.measure, _ms(f.window))
    elif isinstance(spec, registry.SmoothedRatio):
        k = float(getattr(settings.features, spec.strength_setting))
        w = _ms(f.window)
        value = (_scaled(spec.numerator, w) + F.lit(f.default * k)) / (_scaled(spec.denominator, w) + F.lit(k))
    elif isinstance(spec, registry.Attribute):
        value = F.col(f"__attr_{spec.column}")
    elif isinstance(spec, registry.CatalogCount):
        value = F.col("__cat_n").cast("double")
    elif isinstance(spec, registry.CatalogMean):
        n, total = F.col(f"__cat_n_{spec.column}"), F.col(f"__cat_sum_{spec.column}")
        value = F.when(n > 0, total / n / F.lit(_scale(spec.column)))
    elif isinstance(spec, registry.CatalogStd):
        n, total = F.col(f"__cat_n_{spec.column}"), F.col(f"__cat_sum_{spec.column}")
        sq = F.col(f"__cat_sumsq_{spec.column}")
        mean = total / n / F.lit(_scale(spec.column))
        value = F.when(n > 0, F.sqrt(F.greatest(sq / n / F.lit(float(LOG_SCALE)) - mean * mean, F.lit(0.0))))
    else:
        raise ValueError(f"feature {f.name!r} has no Spark computation (kind {f.kind})")
    return value.cast("double")


def _scale(column: str) -> float:
    return float(PRICE_SCALE if column == "price" else LOG_SCALE)


def _fp(column: str) -> str:
    if column not in ("price", "log_price"):
        raise ValueError(f"catalog aggregates are defined for price and log_price, not {column!r}")
    return f"{column}_fp"


def entity_features(
    entity: str,
    hourly: DataFrame,
    cat: DataFrame,
    settings: Settings,
    start_ms: int,
    end_ms: int,
    with_missing: bool = False,
) -> DataFrame:
    """Every stored feature of ``entity`` at every change point in ``(start_ms, end_ms]``:
    ``<key>, feature_ts, <join keys>, <features>``; with ``with_missing``, also one boolean
    :func:`missing_column` per feature, true where the default was filled in (what the
    validation gate counts: after filling, a missing value looks like any other).

    ``hourly`` are item-hour facts (:func:`item_hourly`) covering at least the longest
    window before ``start_ms``; ``cat`` is the full catalog (:func:`catalog`).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = registry.ENTITIES[entity].key
    feats = registry.stored_features(entity)
    specs = [f.compute for f in feats]
    windows = [_ms(w) for w in registry.windows(entity)]
    measures = sorted(
        {s.measure for s in specs if isinstance(s, registry.WindowSum)}
        | {m for s in specs if isinstance(s, registry.SmoothedRatio) for m in (s.numerator, s.denominator)}
    )
    has_events = bool(measures)
    counts = any(isinstance(s, registry.CatalogCount) for s in specs)
    attrs = sorted({s.column for s in specs if isinstance(s, registry.Attribute)})
    cat_cols = sorted({s.column for s in specs if isinstance(s, registry.CatalogMean | registry.CatalogStd)})
    joins = registry.join_keys(entity)
    has_catalog = bool(attrs or cat_cols or joins or counts)

    rows: list[DataFrame] = []
    if has_events:
        # Each hour adds its counts when it ends and takes them back when it leaves a window:
        # a running sum of these deltas is the windowed sum, in one pass (a sliding range frame
        # would re-add the whole window at every row).
        facts = entity_hourly(hourly, cat, entity).where(F.col("t") <= end_ms)
        rows.append(facts.select(key, "t", *[F.col(m).alias(_delta(m, w)) for w in windows for m in measures]))
        rows += [
            facts.select(key, (F.col("t") + w).alias("t"), *[(-F.col(m)).alias(_delta(m, w)) for m in measures])
            for w in windows
        ]
    if has_catalog:
        own = cat.where(F.col(key).isNotNull() & (F.col("created_ms") <= end_ms))
        fp = [c for col in cat_cols for c in (_fp(col), "log_price_sq_fp" if col == "log_price" else None) if c]
        rows.append(
            own.select(
                key,
                F.col("created_ms").alias("t"),
                *([F.lit(1).alias("__one")] if counts else []),
                *[F.col(c).alias(f"__attr_{c}") for c in attrs],
                *[F.col(j).alias(f"__join_{j}") for j in joins if j != key],
                *sorted(set(fp)),
            )
        )
    both = rows[0]
    for extra in rows[1:]:
        both = both.unionByName(extra, allowMissingColumns=True)

    by_key = Window.partitionBy(key).orderBy("t")
    so_far = by_key.rangeBetween(Window.unboundedPreceding, 0)
    columns = [F.col(key), F.col("t")]
    if has_events:  # hour ends in (t - w, t]
        columns += [F.sum(_delta(m, w)).over(so_far).alias(_windowed(m, w)) for w in windows for m in measures]
    if counts:
        columns.append(F.sum("__one").over(so_far).alias("__cat_n"))
    if has_catalog:
        columns += [F.last(f"__attr_{c}", ignorenulls=True).over(so_far).alias(f"__attr_{c}") for c in attrs]
        columns += [F.last(f"__join_{j}", ignorenulls=True).over(so_far).alias(j) for j in joins if j != key]
        for col in cat_cols:
            present = F.when(F.col(_fp(col)).isNotNull(), 1).otherwise(0)
            columns.append(F.sum(present).over(so_far).alias(f"__cat_n_{col}"))
            columns.append(F.sum(_fp(col)).over(so_far).alias(f"__cat_sum_{col}"))
            if col == "log_price":
                columns.append(F.sum("log_price_sq_fp").over(so_far).alias(f"__cat_sumsq_{col}"))
    # Several rows can share (key, t) (an hour end that is also another hour's expiry); a
    # range frame gives peers identical values, so the last of them stands for all (found
    # with lead() over the same sort, no extra aggregation or shuffle).
    columns.append(F.lead("t").over(by_key).alias("__next_t"))
    return (
        both.select(*columns)
        .where((F.col("t") > start_ms) & (F.col("t") <= end_ms))
        .where(F.col("__next_t").isNull() | (F.col("__next_t") != F.col("t")))
        .select(
            key,
            F.timestamp_millis("t").alias("feature_ts"),
            *joins,
            *[_value(f, settings) for f in feats],
            *[_raw_value(f, settings).isNull().alias(missing_column(f.name)) for f in feats if with_missing],
        )
    )


def with_time_partitions(df: DataFrame, ts_col: str) -> DataFrame:
    """Daily ``dt`` partitions: change points are sparse, hourly folders would be mostly tiny files."""
    from pyspark.sql import functions as F

    return df.withColumn("dt", F.date_format(ts_col, "yyyy-MM-dd"))


# -- point-in-time joins ---------------------------------------------------------------------
def as_of_join(left: DataFrame, features: DataFrame, key: str, ts_col: str, names: list[str]) -> DataFrame:
    """For each left row, the latest feature row with ``feature_ts <= left[ts_col]`` of the same key.

    Union-and-scan instead of a range join: feature rows sort before left rows at
    equal times, a running ``last(..., ignorenulls)`` carries values forward, so the
    cost is one sort per key and never a later value.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    marker = "__is_left"
    lhs = left.withColumn("__t", F.col(ts_col)).withColumn(marker, F.lit(1))
    rhs = features.select(key, F.col("feature_ts").alias("__t"), F.struct(*names).alias("__row")).withColumn(
        marker, F.lit(0)
    )
    both = lhs.unionByName(rhs, allowMissingColumns=True)
    running = Window.partitionBy(key).orderBy("__t", marker).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    keep = [c for c in left.columns if c not in names]
    carried = both.select(*keep, marker, F.last("__row", ignorenulls=True).over(running).alias("__row"))
    return carried.where(F.col(marker) == 1).select(*keep, *[F.col(f"__row.{n}").alias(n) for n in names])


def join_all_features(events: DataFrame, offline: dict[str, DataFrame], ts_col: str = "ts") -> DataFrame:
    """Every stored feature of every entity, as of each event's time.

    The item row (as of the event) carries its seller and category keys; the joined
    entities are then looked up as of the same time by those keys: the same path
    the online lookup takes, so training and serving see the same values.
    """
    joined = events
    for entity in registry.stored_entities():
        if entity not in offline:
            raise LakeError(f"no offline features for entity {entity!r}")
        key = registry.ENTITIES[entity].key
        names = [*registry.join_keys(entity), *registry.stored_names(entity)]
        joined = as_of_join(joined, offline[entity], key, ts_col, names)
    return joined
