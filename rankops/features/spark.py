"""Spark transforms that compute the stored features declared in the registry.

Point-in-time semantics: a feature row stamped ``feature_ts = t`` uses only
events with ``ts < t``. Windowed aggregates are emitted at *change points*: the
end of every hour with events (the value grows) and that hour plus the window
length (the events expire). Between two change points the value is constant, so
an as-of lookup of the latest row at or before any time gives the exact value at
that time, with no dense entity x hour grid. All of it is Spark-native
(no Python UDFs, no ``collect`` of data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankops.errors import LakeError
from rankops.features import registry
from rankops.lake import Lake
from rankops.spark_session import spark_uri

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from rankops.config import Settings

HOUR_S = 3600


def read_committed(spark: SparkSession, lake: Lake, zone: str, dataset: str) -> DataFrame:
    """Read only the committed files of a lake dataset, keeping its partition columns."""
    files = lake.files(zone, dataset)  # type: ignore[arg-type]
    if not files:
        raise LakeError(f"{lake.uri(zone, dataset)} has no committed data; run the stage that writes it")  # type: ignore[arg-type]
    base = spark_uri(lake.uri(zone, dataset))  # type: ignore[arg-type]
    return spark.read.option("basePath", base).parquet(*[spark_uri(f) for f in files])


def _examination(position: Column, eta: float) -> Column:
    from pyspark.sql import functions as F

    return F.pow(position.cast("double"), F.lit(-eta))


def item_hourly(events: DataFrame, eta: float) -> DataFrame:
    """Per item and hour: impressions, clicks and expected examinations (position-debiasing weight)."""
    from pyspark.sql import functions as F

    return (
        events.withColumn("bucket_s", (F.floor(F.unix_timestamp("ts") / HOUR_S) * HOUR_S).cast("long"))
        .groupBy("item_id", "bucket_s")
        .agg(
            F.count(F.lit(1)).alias("impressions"),
            F.sum(F.col("clicked").cast("long")).alias("clicks"),
            F.sum(_examination(F.col("position"), eta)).alias("examinations"),
        )
    )


def item_features(events: DataFrame, items: DataFrame, settings: Settings) -> DataFrame:
    """Every stored item feature at every change point: ``item_id, feature_ts, <features>``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cfg = settings.features
    window_s = int(registry.WINDOW_7D.total_seconds())
    hourly = item_hourly(events, cfg.position_bias_eta)
    prior = registry.feature("ctr_7d").default
    # Change points: end of each active hour, its expiry, and the item's creation (attributes become known).
    points = (
        hourly.select("item_id", (F.col("bucket_s") + HOUR_S).alias("t"))
        .union(hourly.select("item_id", (F.col("bucket_s") + HOUR_S + window_s).alias("t")))
        .union(items.select("item_id", F.floor(F.unix_timestamp("created_at")).cast("long").alias("t")))
        .distinct()
        .withColumn("is_point", F.lit(True))
    )
    facts = hourly.select(
        "item_id", F.col("bucket_s").alias("t"), "impressions", "clicks", "examinations", F.lit(False).alias("is_point")
    )
    both = points.unionByName(facts, allowMissingColumns=True)
    trailing = Window.partitionBy("item_id").orderBy("t").rangeBetween(-window_s, -1)
    sums = (
        both.withColumn("imp", F.sum("impressions").over(trailing))
        .withColumn("clk", F.sum("clicks").over(trailing))
        .withColumn("exam", F.sum("examinations").over(trailing))
        .where("is_point")
    )
    k = cfg.ctr_prior_strength
    aggregates = sums.select(
        "item_id",
        F.col("t").alias("feature_s"),
        (
            (F.coalesce(F.col("clk"), F.lit(0)) + F.lit(prior * k)) / (F.coalesce(F.col("exam"), F.lit(0.0)) + F.lit(k))
        ).alias("ctr_7d"),
        F.coalesce(F.col("imp"), F.lit(0)).cast("double").alias("impressions_7d"),
    )
    attributes = items.select(
        "item_id",
        F.col("image_quality").cast("double").alias("image_quality_score"),
        F.col("price").cast("double").alias("price"),
        F.unix_timestamp("created_at").cast("double").alias("created_at_s"),
        F.crc32(F.col("category")).cast("double").alias("category_code"),
    )
    names = [f.name for f in registry.stored_features("item")]
    return aggregates.join(attributes, "item_id", "left").select(
        "item_id", F.timestamp_seconds("feature_s").alias("feature_ts"), *names
    )


def with_time_partitions(df: DataFrame, ts_col: str) -> DataFrame:
    """Daily ``dt`` partitions: change points are sparse, hourly folders would be mostly tiny files."""
    from pyspark.sql import functions as F

    return df.withColumn("dt", F.date_format(ts_col, "yyyy-MM-dd"))


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
