"""The streaming feature job on EMR Serverless: keep exactly one run alive, publish its freshness.

The job (``emr_jobs/stream_features.py`` reading the Kinesis stream) runs as a ``STREAMING`` job
run: EMR Serverless restarts a failed run from its checkpoint by itself, up to
``maxFailedAttemptsPerHour`` failures an hour (its retry policy; past that it gives up to stop
thrashing). The keeper (``lambdas/keep_stream_job``, every few minutes and on every state change
of the run) starts a new run when none is active, so a run that gave up, was cancelled or ended
comes back within minutes; the checkpoint in the lake makes the new run continue where the old
one stopped (exactly once: ``docs/streaming.md``). Each call publishes ``StreamJobActive`` (1/0).

Freshness is published by the job itself (:func:`freshness_reporter`): the age of the newest
window value it has written, an upper bound on event time to readable value (see
:func:`freshness_upper_bound_s`). CloudWatch alarms watch it and the stream's iterator age
(``infra/constructs/stream_compute.py``).

Standard library only at import time (the keeper Lambda's runtime).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rankops.features.runs import ACTIVE_STATES, emr_job_fields

RUN_NAME = "stream-features"  # not ``features-*``: the hourly starter does not wait for it
ACTIVE_METRIC = "StreamJobActive"
FRESHNESS_METRIC = "StreamFreshnessSeconds"
KINESIS_SCHEME = "kinesis://"
LOOKBACK = timedelta(days=30)  # a streaming run lives for weeks


@dataclass(frozen=True)
class StreamJobSettings:
    """What the keeper starts, from its function's environment (set by CDK)."""

    application_id: str
    role_arn: str
    entry_point: str
    arguments: tuple[str, ...]
    spark_parameters: str
    max_failed_attempts_per_hour: int
    namespace: str
    environment: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StreamJobSettings:
        return cls(
            **emr_job_fields(environ, "keep_stream_job"),
            max_failed_attempts_per_hour=int(environ.get("MAX_FAILED_ATTEMPTS_PER_HOUR", "5")),
        )


def _metric(settings_env: str, name: str, value: float, now: datetime, unit: str = "None") -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": "Environment", "Value": settings_env}],
        "Timestamp": now,
        "Value": value,
        "Unit": unit,
    }


def active_runs(emr: Any, settings: StreamJobSettings, now: datetime) -> list[dict[str, Any]]:
    pages = emr.get_paginator("list_job_runs").paginate(
        applicationId=settings.application_id, states=list(ACTIVE_STATES), createdAtAfter=now - LOOKBACK
    )
    return [r for page in pages for r in page["jobRuns"] if r.get("name") == RUN_NAME]


def keep_running(settings: StreamJobSettings, emr: Any, cloudwatch: Any, now: datetime) -> dict[str, Any]:
    """Start the streaming run unless one is active; publish whether one was. Returns what happened."""
    active = active_runs(emr, settings, now)
    cloudwatch.put_metric_data(
        Namespace=settings.namespace,
        MetricData=[_metric(settings.environment, ACTIVE_METRIC, 1.0 if active else 0.0, now)],
    )
    if active:
        return {"started": False, "reason": "the streaming run is active", "active": active[0]["id"]}
    response = emr.start_job_run(
        applicationId=settings.application_id,
        # one start per minute at most, even if the schedule and a state change both fire
        clientToken=f"{RUN_NAME}-{now:%Y%m%dT%H%M}",
        executionRoleArn=settings.role_arn,
        name=RUN_NAME,
        mode="STREAMING",
        retryPolicy={"maxFailedAttemptsPerHour": settings.max_failed_attempts_per_hour},
        jobDriver={
            "sparkSubmit": {
                "entryPoint": settings.entry_point,
                "entryPointArguments": list(settings.arguments),
                **({"sparkSubmitParameters": settings.spark_parameters} if settings.spark_parameters else {}),
            }
        },
    )
    return {"started": True, "job_run_id": response["jobRunId"], "name": RUN_NAME}


def freshness_upper_bound_s(newest_window_end_s: int, slide_s: int, now_s: float) -> float:
    """Seconds from the newest written event's time to now, at most. The job knows the newest
    window *end* it wrote; that event lies within one slide before it, so this is never below
    the true lag (alarms fire early rather than late). Nothing written yet: infinite."""
    if newest_window_end_s <= 0:
        return float("inf")
    return max(0.0, now_s - newest_window_end_s + slide_s)


def freshness_reporter(cloudwatch: Any, namespace: str, environment: str, slide_s: int) -> Callable[[int], None]:
    """A callback for the running job: given the newest window end written, publish the freshness
    upper bound (nothing while no window has been written: the alarm treats silence as breaching)."""

    def report(newest_window_end_s: int) -> None:
        lag = freshness_upper_bound_s(newest_window_end_s, slide_s, time.time())
        if lag == float("inf"):
            return
        now = datetime.now(UTC)
        cloudwatch.put_metric_data(
            Namespace=namespace, MetricData=[_metric(environment, FRESHNESS_METRIC, lag, now, "Seconds")]
        )

    return report


def kinesis_stream(source: str) -> str | None:
    """``kinesis://<stream name>`` -> the stream name; a lake folder -> ``None``."""
    return source[len(KINESIS_SCHEME) :] if source.startswith(KINESIS_SCHEME) else None
