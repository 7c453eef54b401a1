"""When a retraining run may start: the rules behind ``lambdas/retrain_trigger``.

Triggers: the weekly EventBridge schedule, the feature-drift alarm entering ALARM, and an
emergency request (an EventBridge event ``source=rankops.ops``, ``detail-type`` =
:data:`EMERGENCY_DETAIL_TYPE`, ``detail={"reason", "requested_by"}``, or a direct invocation
``{"trigger": "emergency", "reason": ..., "requested_by": ...}``).

Rules, in the order they are applied:

1. Never two runs at once (a second would race the first for the model aliases).
2. Cooldown: a drift alarm that stays in ALARM (or flaps back into it) starts one retrain per
   ``cooldown`` (default 24 h), not one an hour: no drift run starts within ``cooldown`` of the
   last automatic run.
3. Single flight without a check-then-start race: automatic runs are named after their trigger
   window (``auto-<start of the cooldown window>``). Step Functions refuses a second execution of
   the same name (``ExecutionAlreadyExists``; names stay taken for 90 days), so two triggers that
   race past the checks above in one window still start one run between them.

Emergencies skip the cooldown (an operator asked) but not rule 1; their name derives from the
event, so a redelivered event cannot start a second run, and each is announced on the
approvals topic, started or not. Standard library only (the Lambda runtime has boto3, not
rankops's dependencies); clients are passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Trigger = Literal["schedule", "drift", "emergency"]
EMERGENCY_DETAIL_TYPE = "Emergency Retrain Requested"
AUTO_PREFIX = "auto-"
DEFAULT_COOLDOWN = timedelta(hours=24)


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


def window_start(at: datetime, cooldown: timedelta) -> datetime:
    """The start of the cooldown-long window (counted from the epoch, UTC) holding ``at``."""
    size = max(int(cooldown.total_seconds()), 60)
    return datetime.fromtimestamp(int(at.timestamp()) // size * size, UTC)


def execution_name(request: RetrainRequest, cooldown: timedelta = DEFAULT_COOLDOWN) -> str:
    """Automatic runs: ``auto-<window start>``; emergencies: ``emergency-<time>-<event id>``.
    At most 80 characters of [A-Za-z0-9-_], as Step Functions requires."""
    at = datetime.fromisoformat(request.requested_at.replace("Z", "+00:00"))
    if request.trigger != "emergency":
        return f"{AUTO_PREFIX}{window_start(at, cooldown):%Y%m%dT%H%M}"
    stamp = re.sub(r"[^0-9T]", "", request.requested_at)
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"emergency-{stamp}-{request.event_id}")[:80]


def _blocker(request: RetrainRequest, recent: list[dict[str, Any]], cooldown: timedelta) -> dict[str, Any] | None:
    """Why ``request`` may not start, given the newest executions (newest first), or ``None``."""
    running = [e for e in recent if e["status"] == "RUNNING"]
    if running:
        return {"reason": "an execution is running", "running": running[0]["name"]}
    if request.trigger != "drift":
        return None
    at = datetime.fromisoformat(request.requested_at.replace("Z", "+00:00"))
    for execution in recent:
        started = execution["startDate"]
        if execution["name"].startswith(AUTO_PREFIX) and at - started < cooldown:
            last = execution["name"]
            return {"reason": f"cooldown: {last} started {started:%Y-%m-%d %H:%M} UTC", "last": last}
    return None


def trigger(
    request: RetrainRequest,
    sfn: Any,
    sns: Any,
    state_machine_arn: str,
    approvals_topic_arn: str,
    cooldown: timedelta = DEFAULT_COOLDOWN,
) -> dict[str, Any]:
    """Start the execution if the rules allow it; announce emergencies. Returns what happened."""
    recent = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=20)["executions"]
    name = execution_name(request, cooldown)
    result: dict[str, Any]
    blocked = _blocker(request, recent, cooldown)
    if blocked is not None:
        result = {"started": False, **blocked}
    else:
        try:
            response = sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps({"reason": request.trigger, "trigger": asdict(request)}),
            )
            result = {"started": True, "execution_arn": response["executionArn"], "name": name}
        except sfn.exceptions.ExecutionAlreadyExists:
            result = {"started": False, "reason": f"{name} already ran in this trigger window", "name": name}
    if request.trigger == "emergency":
        verb = "started" if result["started"] else f"NOT started ({result['reason']})"
        sns.publish(
            TopicArn=approvals_topic_arn,
            Subject="Emergency retrain started" if result["started"] else "Emergency retrain NOT started",
            Message=f"Emergency retrain requested by {request.requested_by}: {request.reason}\n"
            f"Execution {name}: {verb}.",
        )
    return {"trigger": request.trigger, **result}
