"""Start a retraining execution of the pipeline: weekly, on feature drift, or in an emergency.

The rules (single flight, cooldown, execution names) live in :mod:`rankops.pipeline.retrain`.
Environment: ``STATE_MACHINE_ARN``, ``APPROVALS_TOPIC_ARN``, ``RETRAIN_COOLDOWN_HOURS``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from rankops.pipeline.retrain import (
    DEFAULT_COOLDOWN,
    EMERGENCY_DETAIL_TYPE,
    BadRequest,
    RetrainRequest,
    execution_name,
    parse,
    trigger,
)

__all__ = ["EMERGENCY_DETAIL_TYPE", "BadRequest", "RetrainRequest", "execution_name", "handler"]


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    import boto3

    request = parse(event, datetime.now(UTC))
    if request is None:
        return {"started": False, "reason": "the alarm is not in ALARM"}
    hours = os.environ.get("RETRAIN_COOLDOWN_HOURS")
    return trigger(
        request,
        boto3.client("stepfunctions"),
        boto3.client("sns"),
        os.environ["STATE_MACHINE_ARN"],
        os.environ["APPROVALS_TOPIC_ARN"],
        timedelta(hours=float(hours)) if hours else DEFAULT_COOLDOWN,
    )
