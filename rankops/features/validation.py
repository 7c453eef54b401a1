"""The validation gate in front of every publication of features.

Spark computes a few numbers per entity over the staged rows (one aggregation,
:func:`collect_stats`); :func:`evaluate` turns them into a report with pure Python
rules (schema, null and default rates, valid ranges, row count against the
previous comparable run, freshness of the input). The default rate is the share of
rows whose feature had no value and got its default, counted before the default is
filled in (features.max_default_rate_default, or the feature's own limit in
features.max_default_rate). A run is published only if
every check passes; otherwise nothing is committed, the previous data stays live,
and the JSON report says what failed and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rankops.features import registry

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

    from rankops.features.settings import FeaturesConfig


@dataclass
class Check:
    entity: str
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, entity: str, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(entity, name, ok, detail))

    def summary(self) -> str:
        return "; ".join(f"{c.entity}.{c.name}: {c.detail}" for c in self.failures) or "all checks passed"


def expected_schema(entity: str) -> dict[str, str]:
    """Column -> Spark simple type name of an entity's offline rows."""
    key = registry.ENTITIES[entity].key
    schema = {key: "string", "feature_ts": "timestamp"}
    schema.update(dict.fromkeys(registry.join_keys(entity), "string"))
    schema.update({f.name: "double" for f in registry.stored_features(entity)})
    return schema


def stats_columns(entity: str) -> list[Column]:
    """Aggregates over an entity's rows (as :func:`rankops.features.spark.entity_features`
    makes them with ``with_missing=True``): row count, time span, and per feature the
    published nulls / NaNs, the rows whose value was missing and got the default (counted
    from the flag columns, i.e. before filling), out-of-range values and min / max (NaN
    excluded). Usable both as a plain aggregation and as a Spark ``observe`` on the write
    (no second pass)."""
    from pyspark.sql import functions as F

    from rankops.features.spark import missing_column

    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.min("feature_ts").alias("ts_min"),
        F.max("feature_ts").alias("ts_max"),
    ]
    for f in registry.stored_features(entity):
        c = F.col(f.name)
        lo, hi = f.valid_range
        real = c.isNotNull() & ~F.isnan(c)
        aggs += [
            F.sum(F.when(c.isNull(), 1).otherwise(0)).alias(f"{f.name}__nulls"),
            F.sum(F.when(c.isNotNull() & F.isnan(c), 1).otherwise(0)).alias(f"{f.name}__nans"),
            F.sum(F.when(F.col(missing_column(f.name)), 1).otherwise(0)).alias(f"{f.name}__defaults"),
            F.sum(F.when(real & ((c < F.lit(lo)) | (c > F.lit(hi))), 1).otherwise(0)).alias(f"{f.name}__outside"),
            F.min(F.when(real, c)).alias(f"{f.name}__min"),
            F.max(F.when(real, c)).alias(f"{f.name}__max"),
        ]
    return aggs


def stats_from(values: dict[str, Any], schema: StructType, entity: str) -> dict[str, Any]:
    """Shape the aggregated values (from :func:`stats_columns`) into a report section."""
    stats: dict[str, Any] = {
        "rows": int(values.get("rows") or 0),
        "ts_min": str(values["ts_min"]) if values.get("ts_min") else None,
        "ts_max": str(values["ts_max"]) if values.get("ts_max") else None,
        "schema": {fld.name: fld.dataType.simpleString() for fld in schema.fields if fld.name != "dt"},
        "features": {},
    }
    for f in registry.stored_features(entity):
        stats["features"][f.name] = {
            k: (values.get(f"{f.name}__{k}") or 0) if k not in ("min", "max") else values.get(f"{f.name}__{k}")
            for k in ("nulls", "nans", "defaults", "outside", "min", "max")
        }
    return stats


def collect_stats(frame: DataFrame, entity: str) -> dict[str, Any]:
    """:func:`stats_columns` as one aggregation over ``frame`` (with its missing-value flags)."""
    from rankops.features.spark import MISSING_PREFIX

    row = frame.agg(*stats_columns(entity)).first()
    assert row is not None  # an aggregation without grouping always returns one row
    published = frame.drop(*[c for c in frame.columns if c.startswith(MISSING_PREFIX)])
    return stats_from(row.asDict(), published.schema, entity)


def evaluate(
    entity: str,
    stats: dict[str, Any],
    cfg: FeaturesConfig,
    previous_rows: int | None,
    freshness_lag_s: float | None,
    report: Report,
) -> None:
    """Apply the rules to one entity's stats, appending checks to ``report``."""
    expected = expected_schema(entity)
    got = stats["schema"]
    problems = [f"{c}: expected {t}, got {got.get(c, 'missing')}" for c, t in expected.items() if got.get(c) != t]
    problems += [f"{c}: not declared" for c in got if c not in expected]
    report.add(entity, "schema", not problems, "; ".join(problems) or "columns and types match the registry")

    rows = stats["rows"]
    report.add(entity, "rows", rows > 0, f"{rows} rows" if rows else "no rows computed for the window")
    for name, s in stats["features"].items():
        f = registry.feature(name)
        # A null, or a NaN where the default is a number, cannot be served (materialization refuses it).
        unusable = s["nulls"] + (0 if math.isnan(f.default) else s["nans"])
        null_rate = unusable / rows if rows else 0.0
        report.add(
            entity,
            f"{name}.null_rate",
            null_rate <= cfg.max_null_rate,
            f"null rate {null_rate:.4f} (max {cfg.max_null_rate}): {unusable} null or NaN values",
        )
        default_rate = s["defaults"] / rows if rows else 0.0
        limit = cfg.max_default_rate.get(name, cfg.max_default_rate_default)
        report.add(
            entity,
            f"{name}.default_rate",
            default_rate <= limit,
            f"default rate {default_rate:.4f} (max {limit}): {s['defaults']} of {rows} rows had no value "
            f"and got the default {f.default}",
        )
        lo, hi = f.valid_range
        report.add(
            entity,
            f"{name}.range",
            s["outside"] == 0,
            f"{s['outside']} values outside [{lo}, {hi}] (min {s['min']}, max {s['max']})",
        )
    if previous_rows is None:
        report.add(entity, "row_count_change", True, "no comparable previous run")
    else:
        change = abs(rows - previous_rows) / max(previous_rows, 1)
        report.add(
            entity,
            "row_count_change",
            change <= cfg.max_row_count_change,
            f"{rows} rows vs {previous_rows} in the previous comparable run: change {change:.2%} "
            f"(max {cfg.max_row_count_change:.0%})",
        )
    event_slas = [f.freshness_sla for f in registry.stored_features(entity) if f.window is not None]
    if event_slas:
        sla_s = min(event_slas).total_seconds()
        if freshness_lag_s is None:
            report.add(entity, "freshness", False, "no events in the window or its look-back")
        else:
            report.add(
                entity,
                "freshness",
                freshness_lag_s <= sla_s,
                f"newest events {freshness_lag_s / 3600:.2f} h before the window end (SLA {sla_s / 3600:.1f} h)",
            )
