"""One closed hour of served traffic judged in AWS: drift and online metrics, published to CloudWatch.

What ``emr_jobs/monitor.py`` runs every hour (started by :mod:`rankops.monitoring.runs`). The
answers are the endpoint's data capture read once with the one feedback reader; the drift job
(:mod:`rankops.monitoring.drift_job`, as ``rankops drift --endpoint --cloudwatch``) publishes
``FeatureDriftPSI`` and the online metrics job (:func:`rankops.monitoring.online_metrics.rows_of`,
as ``rankops online-metrics --cloudwatch``) ``RevenueProxy``. The score KL is left out: its
references are in MLflow, and nothing in CloudWatch watches it (``rankops drift`` reports it).

An hour without captured answers publishes nothing and is not an error: the drift alarm ignores
missing hours, and the revenue alarm shows them as INSUFFICIENT_DATA. A part that cannot run (no
processed dataset to compare with yet, say) is reported in ``errors`` after the other part ran.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rankops.errors import RankopsError

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake


def run_hour(
    settings: Settings,
    lake: Lake,
    hour: datetime,
    *,
    endpoint: str,
    capture_uri: str,
    spark: Any,
    cloudwatch: Any,
    namespace: str,
    k: int = 10,
) -> dict[str, Any]:
    """Judge ``[hour, hour + 1 h)`` of ``endpoint``'s capture under ``capture_uri``; returns what was
    published (``drift``/``online``: the data, or ``None``) and any ``errors``."""
    from rankops.monitoring import drift_job, online_metrics
    from rankops.monitoring.drift_report import publish_cloudwatch

    since, until = hour, hour + timedelta(hours=1)
    feedback = drift_job.served(lake, since, until, endpoint=endpoint, destination=capture_uri)
    result: dict[str, Any] = {"hour": since.isoformat(), "requests": feedback.num_rows, "drift": None,
                              "online": None, "errors": {}}  # fmt: skip
    if feedback.num_rows == 0:
        return {**result, "skipped": f"no captured answers of {endpoint} in the hour"}
    try:
        report = drift_job.drift_of(settings, lake, feedback, since, until, score_kl=False)
        datum = publish_cloudwatch(report, cloudwatch, namespace, settings.env)
        result["drift"] = {**datum, "drifted": report["drifted"]}
    except RankopsError as err:
        result["errors"]["drift"] = str(err)
    try:
        rows = online_metrics.rows_of(spark, lake, feedback, since, k)
        result["online"] = online_metrics.publish_cloudwatch(rows, cloudwatch, namespace, settings.env)
    except RankopsError as err:
        result["errors"]["online"] = str(err)
    return result
