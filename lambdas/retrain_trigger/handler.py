"""Start a retraining execution of the pipeline: weekly, on feature drift, or in an emergency.

All three triggers come through this one function so they share one rule: never run
two pipelines at once (a second run would race the first for the model aliases).
Accepted events:
  - the weekly EventBridge schedule ("Scheduled Event");
  - the drift alarm entering ALARM ("CloudWatch Alarm State Change");
  - an emergency request, either an EventBridge event ``source=rankops.ops``,
    ``detail-type="Emergency Retrain Requested"``, ``detail={"reason", "requested_by"}``,
    or a direct invocation ``{"trigger": "emergency", "reason": ..., "requested_by": ...}``.
Emergency requests are announced on the approvals topic, started or not. The execution
name derives from the event, so a redelivered event cannot start a second run.
Standard library and boto3 only (Lambda contract).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Trigger = Literal["schedule", "drift", "emergency"]
EMERGENCY_DETAIL_TYPE = "Emergency Retrain Requested"


class BadRequest(ValueError):
    """The event is not one this function understands; the message says which field is wrong."""


@dataclass(frozen=True)
class RetrainRequest:
    trigger: Trigger
    reason: str
    requested_by: str
    event_id: str
    requested_at: str


def _at(event: Mapping[str, Any], now: datetime) -> str:
    raw = event.get("time")
    when = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else now
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(event: Mapping[str, Any], now: datetime) -> RetrainRequest | None:
    """The request an event stands for; ``None`` for events that need no run (alarm back to OK)."""
    kind = event.get("detail-type")
    event_id = str(event.get("id") or now.strftime("%Y%m%dT%H%M%S%f"))
    detail = event.get("detail") or {}
    if kind == "Scheduled Event":
        return RetrainRequest("schedule", "weekly retraining", "eventbridge", event_id, _at(event, now))
    if kind == "CloudWatch Alarm State Change":
        if detail.get("state", {}).get("value") != "ALARM":
            return None
        alarm = detail.get("alarmName", "?")
        why = f"alarm {alarm}: {detail.get('state', {}).get('reason', '')}".strip()
        return RetrainRequest("drift", why[:500], "cloudwatch", event_id, _at(event, now))
    if kind == EMERGENCY_DETAIL_TYPE or event.get("trigger") == "emergency":
        source = detail if kind == EMERGENCY_DETAIL_TYPE else event
        reason: Any = source.get("reason")
        who: Any = source.get("requested_by")
        if not isinstance(reason, str) or not reason.strip():
            raise BadRequest("an emergency retrain needs a non-empty 'reason'")
        if not isinstance(who, str) or not who.strip():
            raise BadRequest("an emergency retrain needs 'requested_by' (who asked for it)")
        return RetrainRequest("emergency", reason.strip()[:500], who.strip(), event_id, _at(event, now))
    raise BadRequest(f"unsupported event (detail-type={kind!r}, trigger={event.get('trigger')!r})")


def execution_name(request: RetrainRequest) -> str:
    """``<trigger>-<time>-<event id>``: at most 80 characters of [A-Za-z0-9-_], as Step Functions requires."""
    stamp = re.sub(r"[^0-9T]", "", request.requested_at)
    name = f"{request.trigger}-{stamp}-{request.event_id}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:80]


def trigger(
    request: RetrainRequest, sfn: Any, sns: Any, state_machine_arn: str, approvals_topic_arn: str
) -> dict[str, Any]:
    """Start the execution unless one is running; announce emergencies. Returns what happened."""
    running = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=1)
    name = execution_name(request)
    result: dict[str, Any]
    if running["executions"]:
        result = {"started": False, "reason": "an execution is running", "running": running["executions"][0]["name"]}
    else:
        try:
            response = sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps({"reason": request.trigger, "trigger": asdict(request)}),
            )
            result = {"started": True, "execution_arn": response["executionArn"], "name": name}
        except sfn.exceptions.ExecutionAlreadyExists:
            result = {"started": False, "reason": "this event already started an execution", "name": name}
    if request.trigger == "emergency":
        verb = "started" if result["started"] else f"NOT started ({result['reason']})"
        sns.publish(
            TopicArn=approvals_topic_arn,
            Subject="Emergency retrain started" if result["started"] else "Emergency retrain NOT started",
            Message=f"Emergency retrain requested by {request.requested_by}: {request.reason}\n"
            f"Execution {name}: {verb}.",
        )
    return {"trigger": request.trigger, **result}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    import boto3

    now = datetime.now(UTC)
    request = parse(event, now)
    if request is None:
        return {"started": False, "reason": "the alarm is not in ALARM"}
    return trigger(
        request,
        boto3.client("stepfunctions"),
        boto3.client("sns"),
        os.environ["STATE_MACHINE_ARN"],
        os.environ["APPROVALS_TOPIC_ARN"],
    )
