"""Feature job runs on EMR Serverless: one naming rule for every starter, and the hourly start.

Two starters write the same lake partitions: the hourly schedule (``lambdas/start_feature_job``)
and the pipeline's ``BuildFeatures`` state (``stepfunctions/definition.py``, when an execution asks
to refresh features). Both name their runs ``features-<run id>``, so each can see the other's
active runs: the hourly starter skips while *any* feature run is active, whoever started it. Before
deciding, it publishes how many minutes ago the last successful run was created
(``FeatureFreshnessLagMinutes``): the P2 freshness alarm watches that metric and also fires when it
stops arriving. Overlapping runs are skipped rather than queued, so a slow hour never snowballs.

Standard library only at import time (the starter Lambda's runtime).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

RUN_PREFIX = "features"
ACTIVE_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED")
FRESHNESS_METRIC = "FeatureFreshnessLagMinutes"
LOOKBACK = timedelta(days=7)


def run_name(run_id: str) -> str:
    """The name of one feature run (``run_id``: the scheduled hour, or the pipeline's job id)."""
    return f"{RUN_PREFIX}-{run_id}"


def is_feature_run(name: str) -> bool:
    return name.startswith(run_name(""))


def hourly_run_name(scheduled: datetime) -> str:
    """A scheduled hour's run: a redelivered schedule event is recognisably the same run."""
    return run_name(f"{scheduled:%Y%m%dT%H%M}")


@dataclass(frozen=True)
class JobSettings:
    """What the hourly starter runs, from its function's environment (set by CDK)."""

    application_id: str
    role_arn: str
    entry_point: str
    arguments: tuple[str, ...]
    spark_parameters: str
    timeout_minutes: int
    namespace: str
    environment: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> JobSettings:
        return cls(
            **emr_job_fields(environ, "start_feature_job"),
            timeout_minutes=int(environ.get("EXECUTION_TIMEOUT_MINUTES", "60")),
        )


def emr_job_fields(environ: Mapping[str, str], starter: str) -> dict[str, Any]:
    """The EMR Serverless job fields every starter Lambda reads from its environment (set by CDK);
    a missing one is a ``KeyError`` naming the starter and the variables."""
    names = ("APPLICATION_ID", "JOB_ROLE_ARN", "ENTRY_POINT", "METRICS_NAMESPACE", "RANKOPS_ENV")
    missing = [n for n in names if not environ.get(n)]
    if missing:
        raise KeyError(f"{starter}: environment variable(s) {missing} are not set")
    return {
        "application_id": environ["APPLICATION_ID"],
        "role_arn": environ["JOB_ROLE_ARN"],
        "entry_point": environ["ENTRY_POINT"],
        "arguments": tuple(json.loads(environ.get("ENTRY_POINT_ARGUMENTS", "[]"))),
        "spark_parameters": environ.get("SPARK_SUBMIT_PARAMETERS", ""),
        "namespace": environ["METRICS_NAMESPACE"],
        "environment": environ["RANKOPS_ENV"],
    }


def scheduled_time(event: Mapping[str, Any], now: datetime) -> datetime:
    """The schedule's time (EventBridge ``time``), else ``now``; minutes and below dropped."""
    raw = event.get("time")
    when = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else now
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def feature_runs(emr: Any, settings: JobSettings, states: tuple[str, ...], after: datetime) -> list[dict[str, Any]]:
    """Feature runs (any starter's) of the application in ``states`` created after ``after``."""
    pages = emr.get_paginator("list_job_runs").paginate(
        applicationId=settings.application_id, states=list(states), createdAtAfter=after
    )
    return [r for page in pages for r in page["jobRuns"] if is_feature_run(str(r.get("name", "")))]


def freshness_lag_minutes(emr: Any, settings: JobSettings, now: datetime) -> float:
    """Minutes since the newest successful run was created (or since the application was, if none)."""
    successes = feature_runs(emr, settings, ("SUCCESS",), now - LOOKBACK)
    if successes:
        since = max(r["createdAt"] for r in successes)
    else:
        created = emr.get_application(applicationId=settings.application_id)["application"]["createdAt"]
        since = max(created, now - LOOKBACK)
    return max(0.0, (now - since).total_seconds() / 60)


def start_hourly(
    settings: JobSettings, emr: Any, cloudwatch: Any, event: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Publish freshness, then start one run unless a feature run is active. Returns what happened."""
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
    name = hourly_run_name(scheduled_time(event, now))
    active = feature_runs(emr, settings, ACTIVE_STATES, now - LOOKBACK)
    if active:
        return {"started": False, "reason": "a feature run is still active", "active": active[0]["id"],
                "lag_minutes": lag}  # fmt: skip
    job_run_id = submit_run(emr, settings, name, settings.arguments)
    return {"started": True, "job_run_id": job_run_id, "name": name, "lag_minutes": lag}


def submit_run(emr: Any, settings: JobSettings, name: str, arguments: tuple[str, ...] | list[str]) -> str:
    """Start ``settings.entry_point`` with ``arguments`` as the run ``name``; returns its id. The name
    is also the client token: a start retried for the same scheduled run never starts it twice."""
    response = emr.start_job_run(
        applicationId=settings.application_id,
        clientToken=name,
        executionRoleArn=settings.role_arn,
        name=name,
        jobDriver={
            "sparkSubmit": {
                "entryPoint": settings.entry_point,
                "entryPointArguments": list(arguments),
                **({"sparkSubmitParameters": settings.spark_parameters} if settings.spark_parameters else {}),
            }
        },
        executionTimeoutMinutes=settings.timeout_minutes,
    )
    return str(response["jobRunId"])
