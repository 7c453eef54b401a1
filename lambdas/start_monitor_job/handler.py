"""Start the hourly monitoring run (drift and online metrics) on EMR Serverless for the hour that
just closed, once per hour (the rules and the run names: :mod:`rankops.monitoring.runs`). Invoked by
an EventBridge schedule (``infra/constructs/monitor_schedule.py``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    import boto3

    from rankops.monitoring import runs

    return runs.start_for_hour(runs.settings_from(os.environ), boto3.client("emr-serverless"), event, datetime.now(UTC))
