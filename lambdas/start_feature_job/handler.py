"""Start the hourly feature job on EMR Serverless, unless the previous run is still going.

Invoked by an EventBridge schedule (``infra/constructs/feature_compute.py``). Before
deciding, it publishes how many minutes ago the last successful run was created
(``FeatureFreshnessLagMinutes``, namespace ``rankops``, dimension ``Environment``):
the P2 freshness alarm watches that metric and also fires when it stops arriving.
Overlapping runs are skipped rather than queued, so a slow hour never snowballs.
The run name comes from the event's scheduled time, so a redelivered event is
recognisably the same run. Standard library and boto3 only (Lambda contract).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ACTIVE_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED")
FRESHNESS_METRIC = "FeatureFreshnessLagMinutes"
LOOKBACK = timedelta(days=7)


@dataclass(frozen=True)
class JobSettings:
    """What to run, from the function's environment (set by CDK)."""

    application_id: str
    role_arn: str
    entry_point: str
    arguments: tuple[str, ...]
    spark_parameters: str
    timeout_minutes: int
    job_name: str
    namespace: str
    environment: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> JobSettings:
        names = ("APPLICATION_ID", "JOB_ROLE_ARN", "ENTRY_POINT", "JOB_NAME", "METRICS_NAMESPACE", "RANKOPS_ENV")
        missing = [n for n in names if not environ.get(n)]
        if missing:
            raise KeyError(f"start_feature_job: environment variable(s) {missing} are not set")
        return cls(
            application_id=environ["APPLICATION_ID"],
            role_arn=environ["JOB_ROLE_ARN"],
            entry_point=environ["ENTRY_POINT"],
            arguments=tuple(json.loads(environ.get("ENTRY_POINT_ARGUMENTS", "[]"))),
            spark_parameters=environ.get("SPARK_SUBMIT_PARAMETERS", ""),
            timeout_minutes=int(environ.get("EXECUTION_TIMEOUT_MINUTES", "60")),
            job_name=environ["JOB_NAME"],
            namespace=environ["METRICS_NAMESPACE"],
            environment=environ["RANKOPS_ENV"],
        )


def scheduled_time(event: Mapping[str, Any], now: datetime) -> datetime:
    """The schedule's time (EventBridge ``time``), else ``now``; minutes and below dropped."""
    raw = event.get("time")
    when = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else now
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def run_name(job_name: str, scheduled: datetime) -> str:
    return f"{job_name}-{scheduled:%Y%m%dT%H%M}"


def _runs(emr: Any, settings: JobSettings, states: tuple[str, ...], after: datetime) -> list[dict[str, Any]]:
    pages = emr.get_paginator("list_job_runs").paginate(
        applicationId=settings.application_id, states=list(states), createdAtAfter=after
    )
    return [r for page in pages for r in page["jobRuns"] if str(r.get("name", "")).startswith(settings.job_name)]


def freshness_lag_minutes(emr: Any, settings: JobSettings, now: datetime) -> float:
    """Minutes since the newest successful run was created (or since the application was, if none)."""
    successes = _runs(emr, settings, ("SUCCESS",), now - LOOKBACK)
    if successes:
        since = max(r["createdAt"] for r in successes)
    else:
        created = emr.get_application(applicationId=settings.application_id)["application"]["createdAt"]
        since = max(created, now - LOOKBACK)
    return max(0.0, (now - since).total_seconds() / 60)


def start(settings: JobSettings, emr: Any, cloudwatch: Any, event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Publish freshness, then start one run unless one is active. Returns what happened."""
    lag = freshness_lag_minutes(emr, settings, now)
    cloudwatch.put_metric_data(
        Namespace=settings.namespace,
        MetricData=[
            {
                "MetricName": FRESHNESS_METRIC,
                "Dimensions": [{"Name": "Environment", "Value": settings.environment}],
                "Timestamp": now,
                "Value": lag,
                "Unit": "None",
            }
        ],
    )
    name = run_name(settings.job_name, scheduled_time(event, now))
    active = _runs(emr, settings, ACTIVE_STATES, now - LOOKBACK)
    if active:
        return {"started": False, "reason": "a run is still active", "active": active[0]["id"], "lag_minutes": lag}
    response = emr.start_job_run(
        applicationId=settings.application_id,
        clientToken=name,  # the same scheduled hour never starts twice
        executionRoleArn=settings.role_arn,
        name=name,
        jobDriver={
            "sparkSubmit": {
                "entryPoint": settings.entry_point,
                "entryPointArguments": list(settings.arguments),
                **({"sparkSubmitParameters": settings.spark_parameters} if settings.spark_parameters else {}),
            }
        },
        executionTimeoutMinutes=settings.timeout_minutes,
    )
    return {"started": True, "job_run_id": response["jobRunId"], "name": name, "lag_minutes": lag}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    import boto3

    settings = JobSettings.from_environ(os.environ)
    return start(settings, boto3.client("emr-serverless"), boto3.client("cloudwatch"), event, datetime.now(UTC))
