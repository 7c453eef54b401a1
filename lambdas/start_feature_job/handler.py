"""Start the hourly feature job on EMR Serverless unless a feature run is active (the rules and
the run names: :mod:`rankops.features.runs`). Invoked by an EventBridge schedule
(``infra/constructs/feature_compute.py``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    import boto3

    from rankops.features import runs

    settings = runs.JobSettings.from_environ(os.environ)
    return runs.start_hourly(
        settings, boto3.client("emr-serverless"), boto3.client("cloudwatch"), event, datetime.now(UTC)
    )
