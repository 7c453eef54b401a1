"""Keep the EMR Serverless streaming feature run alive: start it unless it is active (the rules:
:mod:`rankops.features.stream_runs`). Invoked every 5 minutes and on job-run state changes by
EventBridge (``infra/constructs/stream_compute.py``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    import boto3

    from rankops.features import stream_runs

    settings = stream_runs.StreamJobSettings.from_environ(os.environ)
    emr, cloudwatch = boto3.client("emr-serverless"), boto3.client("cloudwatch")
    return stream_runs.keep_running(settings, emr, cloudwatch, datetime.now(UTC))
