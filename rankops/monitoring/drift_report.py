"""The drift job: served traffic (the feedback log) against the training reference, per hour and day.

Served feature values are rebuilt for every shown (request, item): the stored features as
published in the offline store at the end of the window (item, then the entities its record
joins), and the on-demand ones from the request's time and context, exactly as serving computes
them. The query category of the request context is compared too (``query_category``): a
campaign that moves traffic between categories shows there first.

The report is a JSON document (``max_psi`` per window, PSI per feature per hour and per day) and
a PNG of PSI per feature over time. ``FeatureDriftPSI`` (the maximum over features of the last
complete hour) goes to CloudWatch in AWS; locally the same figure is written for Prometheus as
``rankops_feature_drift_psi`` (:func:`prometheus_text`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from rankops.errors import DataError
from rankops.features import on_demand, registry
from rankops.features.offline import key_column, latest_values
from rankops.monitoring.drift import CONTEXT_CATEGORY, psi, served_shares
from rankops.monitoring.score_drift import score_kl
from rankops.training.jobs.processing import manifest_uri

if TYPE_CHECKING:
    import pyarrow as pa

    from rankops.config import Settings
    from rankops.lake import Lake


def shown_rows(feedback: pa.Table) -> pd.DataFrame:
    """One row per shown item: ``request_id``, ``ts``, ``item_id``, ``query_category``."""
    frame = feedback.select(["request_id", "ts", "context", "items"]).to_pandas()
    frame[CONTEXT_CATEGORY] = [json.loads(c).get("category") for c in frame["context"]]
    rows = frame.drop(columns="context").explode("items").rename(columns={"items": "item_id"})
    return rows.reset_index(drop=True)


def served_features(lake: Lake, settings: Settings, rows: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """``rows`` with every model feature, as published at ``at`` (registry defaults where absent)."""
    root = registry.stored_entities()[0]
    frame = rows.merge(
        latest_values(lake, settings, root, before=at).to_pandas().drop(columns="feature_ts"),
        how="left",
        left_on="item_id",
        right_on=key_column(root),
    )
    for entity in registry.joined_entities(root):
        table = latest_values(lake, settings, entity, before=at).to_pandas().drop(columns="feature_ts")
        frame = frame.merge(table, how="left", on=key_column(entity), suffixes=("", f"_{entity}"))
    for name, default in registry.defaults().items():
        if name in frame:
            frame[name] = frame[name].astype("float64").fillna(default)
    # seconds whatever the column's unit (the feedback log keeps milliseconds; "int64 / 1e9" assumed ns)
    ts_s = (frame["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy() if len(frame) else np.array([])
    codes = np.array([on_demand.category_code(c) for c in frame[CONTEXT_CATEGORY]], dtype=np.float64)
    stored = {n: frame[n].to_numpy(dtype=np.float64) for n in on_demand.input_names()}
    for name, values in on_demand.compute(stored, ts_s, codes).items():
        frame[name] = values
    return frame


def require_traffic(feedback: pa.Table, since: datetime, until: datetime) -> None:
    if feedback.num_rows == 0:
        raise DataError(
            f"no served traffic in the feedback log between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M} UTC"
        )


def window_psi(reference: dict[str, Any], frame: pd.DataFrame) -> dict[str, float]:
    return {name: round(psi(*served_shares(ref, frame[name])), 6) for name, ref in reference.items() if name in frame}


def drift_report(
    lake: Lake,
    settings: Settings,
    manifest: dict[str, Any],
    feedback: pa.Table,
    since: datetime,
    until: datetime,
    score_references: Mapping[str, dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """PSI per feature per hour and per day of ``feedback`` against ``manifest["reference"]``, and
    with ``score_references`` (per model version) the KL of served scores (:mod:`.score_drift`)."""
    reference = manifest.get("reference")
    if not reference:
        raise DataError(f"dataset {manifest.get('dataset_hash')} has no reference histograms; reprocess it")
    if feedback.num_rows == 0:
        raise DataError(
            f"no served traffic in the feedback log between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M} UTC"
        )
    frame = served_features(lake, settings, shown_rows(feedback), until)
    hours = frame["ts"].dt.floor("h")
    hourly = [
        {"start": h.isoformat(), "rows": len(part), "psi": window_psi(reference, part)}
        for h, part in frame.groupby(hours, sort=True)
    ]
    daily = [
        {"start": d.isoformat(), "rows": len(part), "psi": window_psi(reference, part)}
        for d, part in frame.groupby(frame["ts"].dt.floor("D"), sort=True)
    ]
    last = hourly[-1]["psi"]
    threshold = settings.aws.alarms.feature_drift_psi
    return {
        "dataset_hash": manifest.get("dataset_hash"),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "threshold": threshold,
        "requests": int(feedback.num_rows),
        "max_psi": max(last.values()),
        "drifted": sorted(name for name, value in last.items() if value > threshold),
        "hourly": hourly,
        "daily": daily,
        "score_kl": score_kl(feedback, score_references) if score_references is not None else None,
    }


def plot(report: dict[str, Any], path: Any) -> None:
    """PSI per feature over the report's hours (one line per feature, the threshold dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = pd.DatetimeIndex([h["start"] for h in report["hourly"]])
    fig, ax = plt.subplots(figsize=(10, 5))
    for name in report["hourly"][0]["psi"]:
        ax.plot(times, [h["psi"].get(name, np.nan) for h in report["hourly"]], marker=".", label=name)
    ax.axhline(report["threshold"], color="red", linestyle="--", label="threshold")
    ax.set(title=f"Feature drift (PSI) against dataset {str(report['dataset_hash'])[:12]}", ylabel="PSI")
    ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def prometheus_text(report: dict[str, Any]) -> bytes:
    """``rankops_feature_drift_psi`` of the last hour and day, in the text exposition format."""
    registry_ = CollectorRegistry()
    gauge = Gauge("rankops_feature_drift_psi", "PSI per model feature", ("feature", "window"), registry=registry_)
    for window, entries in (("hour", report["hourly"]), ("day", report["daily"])):
        for name, value in entries[-1]["psi"].items():
            gauge.labels(name, window).set(value)
    return generate_latest(registry_)


def cloudwatch_datum(report: dict[str, Any], environment: str) -> dict[str, Any]:
    """The ``FeatureDriftPSI`` datum (maximum over features of the last hour) for PutMetricData."""
    return {
        "MetricName": "FeatureDriftPSI",
        "Dimensions": [{"Name": "Environment", "Value": environment}],
        "Timestamp": datetime.fromisoformat(report["hourly"][-1]["start"]) + timedelta(hours=1),
        "Value": float(report["max_psi"]),
    }


def publish_cloudwatch(report: dict[str, Any], cloudwatch: Any, namespace: str, environment: str) -> dict[str, Any]:
    """Put ``FeatureDriftPSI`` where the P2 drift alarm (infra/constructs/monitoring.py) watches it."""
    datum = cloudwatch_datum(report, environment)
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{**datum, "Unit": "None"}])
    return datum


def default_window(until: datetime | None, since: datetime | None) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return since or end - timedelta(days=1), end


def reference_manifest(lake: Lake, dataset_hash: str | None = None) -> dict[str, Any]:
    """The manifest of ``dataset_hash``, or of the newest processed dataset (artifacts zone)."""
    if dataset_hash:
        uri = manifest_uri(lake, dataset_hash)
        if not lake.exists(uri):
            raise DataError(f"no processed dataset {dataset_hash} in {lake.uri('artifacts', 'datasets')}")
        manifest: dict[str, Any] = lake.read_json(uri)
        return manifest
    fs, base = lake.filesystem(lake.uri("artifacts", "datasets"))
    found = [
        lake.read_json(lake.uri("artifacts", "datasets", info.base_name, "manifest.json"))
        for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        if info.type == pafs.FileType.Directory
    ]
    if not found:
        raise DataError(f"no processed dataset in {lake.uri('artifacts', 'datasets')}; run `rankops train` first")
    newest: dict[str, Any] = max(found, key=lambda m: str(m.get("created_at", "")))
    return newest
