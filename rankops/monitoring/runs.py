"""The hourly monitoring run on EMR Serverless: which hour it judges, and that it runs once per hour.

An EventBridge schedule a few minutes past each hour (``aws.emr.monitor_schedule``) invokes
``lambdas/start_monitor_job``, which starts ``emr_jobs/monitor.py`` (the drift job and the online
metrics job, :mod:`rankops.monitoring.hourly`) on the feature application for the hour that just
closed: the schedule's hour minus one, passed as ``--hour`` so a run that waits in EMR's queue
still judges the hour it was started for. The run is named after that hour (``monitor-<hour>``)
and the name is its client token; a redelivered or retried schedule event finds the hour's run
(in any state) and starts nothing, so an hour is judged at most once. Unlike the feature job,
an active run does not hold the next hour back: each hour is its own window, and the job's
timeout keeps runs from piling up.

Standard library only at import time (the starter Lambda's runtime).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from rankops.features.runs import JobSettings, emr_job_fields, scheduled_time, submit_run

RUN_PREFIX = "monitor"
HOUR_ARGUMENT = "--hour"
TIMEOUT_MINUTES = 50  # under an hour: a stuck run ends before the next hour's starts


def closed_hour(event: Mapping[str, Any], now: datetime) -> datetime:
    """The hour the scheduled invocation judges: the last complete hour before the schedule's time."""
    return scheduled_time(event, now) - timedelta(hours=1)


def run_name(hour: datetime) -> str:
    return f"{RUN_PREFIX}-{hour:%Y%m%dT%H%M}"


def settings_from(environ: Mapping[str, str]) -> JobSettings:
    """What the starter runs, from its function's environment (set by CDK)."""
    return JobSettings(
        **emr_job_fields(environ, "start_monitor_job"),
        timeout_minutes=int(environ.get("EXECUTION_TIMEOUT_MINUTES", str(TIMEOUT_MINUTES))),
    )


def runs_named(emr: Any, settings: JobSettings, name: str, after: datetime) -> list[dict[str, Any]]:
    """The application's runs called ``name`` created after ``after``, whatever their state."""
    pages = emr.get_paginator("list_job_runs").paginate(applicationId=settings.application_id, createdAtAfter=after)
    return [r for page in pages for r in page["jobRuns"] if r.get("name") == name]


def start_for_hour(settings: JobSettings, emr: Any, event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Start the monitoring run of the hour before the schedule's, unless that hour already has one."""
    hour = closed_hour(event, now)
    name = run_name(hour)
    earlier = runs_named(emr, settings, name, hour)  # the hour's run can only be created after it began
    if earlier:
        return {"started": False, "reason": "this hour's monitoring run was already started", "name": name,
                "job_run_id": earlier[0]["id"]}  # fmt: skip
    arguments = [*settings.arguments, HOUR_ARGUMENT, hour.isoformat()]
    return {"started": True, "job_run_id": submit_run(emr, settings, name, arguments), "name": name,
            "hour": hour.isoformat()}  # fmt: skip
