"""The online metrics job: what users did with the answers, per hour, cohort and model version.

Spark, so the same code runs hourly on EMR over data capture and locally over the lake's
feedback log. Input: the feedback table (:data:`rankops.feedback.record.SCHEMA`) and outcomes
(``request_id``, ``position`` from 1, ``outcome`` in click/contact/purchase, optional ``value``:
the purchase's worth, 1 when absent). Per (hour, variant, model_version):

- ``answers``, and ``answers_<level>`` per level of the fallback chain that answered;
- ``ctr_at_k``: clicks on the top ``k`` positions / impressions of the top ``k`` positions;
- ``contact_rate``: share of answers followed by at least one contact;
- ``revenue_proxy``: sum of purchase values;
- ``ndcg_at_k``: NDCG@k with gains click 1, contact 2, purchase 3 (the best outcome of a
  position; the ideal order is over every shown position), averaged over answers with at least
  one outcome (no outcome: nothing to rank against);
- ``coverage``: distinct items shown in a top ``k`` / ``catalogue_size``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

if TYPE_CHECKING:
    from datetime import datetime

    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from rankops.lake import Lake

OUTCOMES_DDL = "request_id string, position int, outcome string, value double, ts timestamp"
GAINS = {"click": 1, "contact": 2, "purchase": 3}
KEYS = ["hour", "variant", "model_version"]
LEVELS = ("champion", "challenger", "previous", "fallback", "rule", "input_order")  # the fallback chain's levels


def online_metrics(feedback: DataFrame, outcomes: DataFrame, catalogue_size: int, k: int = 10) -> DataFrame:
    """One row per (hour, variant, model_version); see the module docstring."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    answers = feedback.select(
        "request_id",
        F.date_trunc("hour", "ts").alias("hour"),
        "variant",
        F.coalesce("model_version", F.lit("none")).alias("model_version"),
        "fallback_level",
        "items",
    )
    shown = answers.select(*KEYS, "request_id", F.posexplode("items").alias("pos0", "item_id")).select(
        *KEYS, "request_id", (F.col("pos0") + 1).alias("position"), "item_id"
    )
    if "value" not in outcomes.columns:
        outcomes = outcomes.withColumn("value", F.lit(1.0))
    gain = F.coalesce(*[F.when(F.col("outcome") == o, F.lit(g)) for o, g in GAINS.items()])
    per_position = outcomes.groupBy("request_id", "position").agg(
        F.max(gain).alias("gain"),
        F.max(F.when(F.col("outcome") == "click", 1).otherwise(0)).alias("clicked"),
        F.max(F.when(F.col("outcome") == "contact", 1).otherwise(0)).alias("contacted"),
        F.sum(F.when(F.col("outcome") == "purchase", F.col("value")).otherwise(0.0)).alias("revenue"),
    )
    rows = shown.join(per_position, ["request_id", "position"], "left").fillna(
        {"gain": 0, "clicked": 0, "contacted": 0, "revenue": 0.0}
    )
    ideal_rank = F.row_number().over(Window.partitionBy("request_id").orderBy(F.desc("gain"), "position"))
    per_answer = (
        rows.withColumn("ideal_position", ideal_rank)
        .groupBy(*KEYS, "request_id")
        .agg(
            F.sum(F.when(F.col("position") <= k, F.col("gain") / F.log2(F.col("position") + 1))).alias("dcg"),
            F.sum(F.when(F.col("ideal_position") <= k, F.col("gain") / F.log2(F.col("ideal_position") + 1))).alias(
                "idcg"
            ),
        )
    )
    by_rows = rows.groupBy(*KEYS).agg(
        F.sum(F.when(F.col("position") <= k, F.col("clicked"))).alias("top_clicks"),
        F.sum(F.when(F.col("position") <= k, 1)).alias("top_impressions"),
        F.sum("revenue").alias("revenue_proxy"),
        F.countDistinct(F.when(F.col("position") <= k, F.col("item_id"))).alias("top_items"),
    )
    contacts = rows.groupBy(*KEYS, "request_id").agg(F.max("contacted").alias("contacted"))
    by_answer = contacts.groupBy(*KEYS).agg(F.count("*").alias("answers"), F.avg("contacted").alias("contact_rate"))
    ndcg = (
        per_answer.where(F.col("idcg") > 0).groupBy(*KEYS).agg(F.avg(F.col("dcg") / F.col("idcg")).alias("ndcg_at_k"))
    )
    levels = (
        answers.groupBy(*KEYS).pivot("fallback_level", list(LEVELS)).count().fillna(0)
    )  # values given: no extra job
    levels = levels.select(*KEYS, *[F.col(c).alias(f"answers_{c}") for c in LEVELS])
    return (
        by_answer.join(by_rows, KEYS)
        .join(ndcg, KEYS, "left")
        .join(levels, KEYS, "left")
        .withColumn("ctr_at_k", F.col("top_clicks") / F.col("top_impressions"))
        .withColumn("coverage", F.col("top_items") / F.lit(float(max(catalogue_size, 1))))
        .withColumn("k", F.lit(k))
        .drop("top_clicks", "top_impressions", "top_items")
        .orderBy(*KEYS)
    )


def rows_of(spark: SparkSession, lake: Lake, feedback: pa.Table, since: datetime, k: int = 10) -> list[dict[str, Any]]:
    """:func:`online_metrics` of ``feedback`` (the logged or captured answers of the window) joined
    with the lake's outcome events from ``since`` on, as plain rows; the catalogue is the raw zone's
    items (``rankops online-metrics`` and the hourly job in AWS both run this)."""
    from rankops.feedback import store

    outcomes = store.read_outcomes(lake, since)
    items = lake.read("raw", "items", columns=["item_id"]) if lake.partitions("raw", "items") else None
    catalogue = len(set(items["item_id"].to_pylist())) if items is not None else 0
    frame = online_metrics(
        spark.createDataFrame(feedback.to_pandas()),
        spark.createDataFrame(outcomes.to_pandas(), schema=OUTCOMES_DDL),
        catalogue,
        k,
    )
    return [r.asDict() for r in frame.collect()]


def prometheus_text(rows: list[dict[str, Any]]) -> bytes:
    """The latest hour's figures as the ``rankops_online_*`` gauges of :mod:`rankops.monitoring.metrics`."""
    registry = CollectorRegistry()
    cohort = ("variant", "model_version")
    ctr = Gauge("rankops_online_ctr", "CTR@k", (*cohort, "k"), registry=registry)
    ndcg = Gauge("rankops_online_ndcg", "NDCG@k", (*cohort, "k"), registry=registry)
    contact = Gauge("rankops_online_contact_rate", "contact rate", cohort, registry=registry)
    revenue = Gauge("rankops_revenue_proxy", "revenue proxy", cohort, registry=registry)
    coverage = Gauge("rankops_catalogue_coverage", "catalogue coverage", cohort, registry=registry)
    latest = max((r["hour"] for r in rows), default=None)
    for r in (r for r in rows if r["hour"] == latest):
        labels = (r["variant"], r["model_version"])
        ctr.labels(*labels, str(r["k"])).set(r["ctr_at_k"])
        if r["ndcg_at_k"] is not None:
            ndcg.labels(*labels, str(r["k"])).set(r["ndcg_at_k"])
        contact.labels(*labels).set(r["contact_rate"])
        revenue.labels(*labels).set(r["revenue_proxy"])
        coverage.labels(*labels).set(r["coverage"])
    return generate_latest(registry)


def revenue_datum(rows: list[dict[str, Any]], environment: str) -> dict[str, Any] | None:
    """``RevenueProxy`` of the latest hour (all cohorts) for PutMetricData, as the P1 alarm watches it."""
    latest = max((r["hour"] for r in rows), default=None)
    if latest is None:
        return None
    return {
        "MetricName": "RevenueProxy",
        "Dimensions": [{"Name": "Environment", "Value": environment}],
        "Timestamp": latest,
        "Value": float(sum(r["revenue_proxy"] for r in rows if r["hour"] == latest)),
        "Unit": "None",
    }


def publish_cloudwatch(
    rows: list[dict[str, Any]], cloudwatch: Any, namespace: str, environment: str
) -> dict[str, Any] | None:
    """Put ``RevenueProxy`` of the latest hour where the P1 alarm watches it (nothing without rows)."""
    datum = revenue_datum(rows, environment)
    if datum is not None:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[datum])
    return datum
