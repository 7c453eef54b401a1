"""The ``retrain-trigger`` scenario: drift in served traffic starts exactly one retrain.

The chain, each link the deployed one:

1. **Drift**: a campaign moves every search to one category; the searches go through the endpoint
   (``InvokeEndpoint``), which writes SageMaker data capture.
2. **The drift job** (:mod:`rankops.monitoring.drift_job`, what ``rankops drift --endpoint NAME
   --cloudwatch`` runs in AWS) reads that capture with the one feedback reader, computes PSI
   against the training reference and publishes ``FeatureDriftPSI`` to (moto) CloudWatch.
3. **The alarm**: whichever alarm of the templates watches that metric (namespace, name,
   dimensions) is evaluated with its template properties against the published datapoints
   (:mod:`rankops.rehearse.alarms`; moto keeps alarms but never evaluates them) and must be in
   ALARM when the hourly job has run.
4. **The rule**: the alarm's state-change event, as CloudWatch puts it on the default bus, is
   matched against every EventBridge rule of the templates (moto's EventBridge pattern matching),
   and delivered to each matching rule's Lambda target through the
   Lambda API: the ``retrain_trigger`` handler runs with its template environment.
5. **One execution**: the event is delivered twice (EventBridge delivers at least once; the
   target retries), and again as the alarm re-entering ALARM an hour later. Exactly one
   execution of the pipeline may start. It is followed to its end: a real retrain.

moto's Step Functions stamps executions with the wall clock, so the alarm's events carry the wall
clock too (the emulator's clock runs faster); the cooldown compares the two.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from rankops.pipeline import runner
from rankops.rehearse import agreement as agree
from rankops.rehearse.alarms import evaluate
from rankops.rehearse.outcome import OnState, ScenarioFailed, ScenarioResult
from rankops.rehearse.pipeline_run import deployed_engine
from rankops.rehearse.session import RELEASE_STATES, Rehearsal, traffic
from rankops.rehearse.world import World

NAME = "retrain-trigger"
ALARM_EVENT = "CloudWatch Alarm State Change"
JOB_DELAY = timedelta(minutes=5)  # the hourly drift job runs a few minutes after its hour closed


def campaign(requests: list[bytes], count: int) -> tuple[str, list[bytes]]:
    """``count`` logged searches with their context moved to the rarest category (a campaign)."""
    bodies = [json.loads(b) for b in requests]
    shares = Counter(str(b.get("context", {}).get("category")) for b in bodies)
    category = min(shares, key=lambda c: (shares[c], c))
    moved = [{**b, "context": {**b.get("context", {}), "category": category}} for b in bodies]
    return category, [json.dumps(moved[i % len(moved)]).encode() for i in range(count)]


def publish_drift(r: Rehearsal, since: datetime, until: datetime) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The drift job on the endpoint's data capture: (report, the datum it published, namespace)."""
    import boto3

    from rankops.lake import Lake
    from rankops.monitoring import drift_job as job
    from rankops.monitoring.drift_report import publish_cloudwatch

    lake = Lake.from_settings(r.settings)
    served = job.served(lake, since, until, endpoint=r.endpoint, sagemaker=boto3.client("sagemaker"))
    report = job.drift_of(r.settings, lake, served, since, until)
    namespace = job.metrics_namespace()
    datum = publish_cloudwatch(report, r.world.client("cloudwatch"), namespace, r.settings.env)
    return report, datum, namespace


def watching_alarm(cw: Any, datum: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The one alarm of the world that watches the published metric (namespace, name, dimensions)."""
    dims = sorted((d["Name"], d["Value"]) for d in datum["Dimensions"])
    pages = cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
    alarms = [a for page in pages for a in page["MetricAlarms"]]
    found = [
        a
        for a in alarms
        if a.get("Namespace") == namespace
        and a.get("MetricName") == datum["MetricName"]
        and sorted((d["Name"], d["Value"]) for d in a.get("Dimensions", [])) == dims
    ]
    if len(found) != 1:
        raise ScenarioFailed(
            NAME,
            datum["MetricName"],
            f"{len(found)} alarms of the templates watch {namespace}/{datum['MetricName']} {dict(dims)} "
            f"(the drift job publishes there; alarms on {sorted({a.get('MetricName') for a in alarms} - {None})})",
        )
    return dict(found[0])


def state_change(region: str, alarm: dict[str, Any], reason: str, at: datetime, previous: str) -> dict[str, Any]:
    """The event CloudWatch puts on the default bus when ``alarm`` enters ALARM."""
    arn = alarm["AlarmArn"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": ALARM_EVENT,
        "source": "aws.cloudwatch",
        "account": arn.split(":")[4],
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": "ALARM", "reason": reason, "timestamp": at.isoformat()},
            "previousState": {"value": previous, "timestamp": at.isoformat()},
            "configuration": {"description": alarm.get("AlarmDescription", "")},
        },
    }


def _target_input(rule: str, target: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    if "InputPath" in target or "InputTransformer" in target:
        raise ScenarioFailed(NAME, rule, f"target {target['Id']} transforms the event; the rehearsal delivers it whole")
    return dict(json.loads(target["Input"])) if "Input" in target else event


def matches(pattern: str, event: dict[str, Any]) -> bool:
    """Whether an EventBridge rule's ``EventPattern`` (JSON text) matches ``event``: moto's
    implementation of EventBridge's matching, the one its ``PutEvents`` routes with (moto does not
    implement the ``TestEventPattern`` API)."""
    from moto.events.models import EventPattern

    return bool(EventPattern.load(pattern).matches_event(event))  # type: ignore[arg-type]


def deliver(world: World, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Route ``event`` as EventBridge does: every enabled rule of the default bus whose pattern
    matches sends it to its Lambda targets (the Lambda API); returns what each target answered."""
    events, lam = world.client("events"), world.client("lambda")
    rules = [r for page in events.get_paginator("list_rules").paginate() for r in page["Rules"]]
    answers = []
    for rule in rules:
        if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
            continue
        if not matches(rule["EventPattern"], event):
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if ":lambda:" not in target["Arn"]:
                continue  # SNS and queues: nothing in them starts a run
            payload = json.dumps(_target_input(rule["Name"], target, event))
            answer = lam.invoke(FunctionName=target["Arn"], Payload=payload.encode())
            body = json.loads(answer["Payload"].read() or b"null")
            if answer.get("FunctionError"):
                raise ScenarioFailed(NAME, rule["Name"], f"{target['Arn']} failed: {body}")
            answers.append({"rule": rule["Name"], "function": target["Arn"].rsplit(":", 1)[-1], "answer": body})
    return answers


def _executions(world: World) -> list[dict[str, Any]]:
    machine = world.state_machines[f"{world.prefix}-pipeline"]
    pages = world.client("stepfunctions").get_paginator("list_executions").paginate(stateMachineArn=machine)
    return [e for page in pages for e in page["executions"]]


def _drift(r: Rehearsal, count: int) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """Campaign traffic through the endpoint, then the drift job: (report, datum, namespace, category)."""
    import boto3

    runtime = boto3.client("sagemaker-runtime")
    category, bodies = campaign(r.requests, count)
    since = r.emulator.clock.now()
    for body in bodies:
        runtime.invoke_endpoint(EndpointName=r.endpoint, Body=body, ContentType="application/json")
    until = r.emulator.clock.now() + timedelta(milliseconds=1)
    r.emulator.flush_capture()  # the job in AWS runs minutes after its hour, when capture is written
    report, datum, namespace = publish_drift(r, since, until)
    return report, datum, namespace, category


def retrain_trigger(r: Rehearsal, on_state: OnState | None = None, requests: int = 400) -> ScenarioResult:
    """See the module docstring. Notes: the drift report's figures, the alarm, every delivery's
    answer, the execution's name."""
    report, datum, namespace, category = _drift(r, requests)
    if not report["drifted"]:
        raise ScenarioFailed(
            NAME, "drift job", f"a campaign on {category!r} drifted nothing (max PSI {report['max_psi']})"
        )
    cw = r.world.client("cloudwatch")
    alarm = watching_alarm(cw, datum, namespace)
    evaluated_at = datum["Timestamp"] + JOB_DELAY
    if evaluate(cw, alarm, evaluated_at) != "ALARM":
        raise ScenarioFailed(
            NAME,
            alarm["AlarmName"],
            f"not in ALARM at {evaluated_at:%H:%M} with {datum['MetricName']}={datum['Value']}",
        )
    reason = (
        f"Threshold Crossed: 1 datapoint [{datum['Value']:.3f}] was greater than the threshold ({alarm['Threshold']})"
    )
    cw.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="ALARM", StateReason=reason)
    before = {e["executionArn"] for e in _executions(r.world)}
    now = datetime.now(UTC)
    first = state_change(r.world.region, alarm, reason, now, "OK")
    again = state_change(r.world.region, alarm, reason, now + timedelta(hours=1), "OK")
    deliveries: list[dict[str, Any]] = []
    with deployed_engine(r.world, r.home, time_scale=r.emulator.clock.factor):
        deliveries += deliver(r.world, first)
        deliveries += deliver(r.world, first)  # EventBridge delivers at least once: the same event again
        started = [e for e in _executions(r.world) if e["executionArn"] not in before]
        if len(started) != 1:
            raise ScenarioFailed(NAME, "retrain_trigger", f"{len(started)} executions started: {deliveries}")
        record = _follow(r, started[0], on_state)
        deliveries += deliver(r.world, again)  # an hour later the alarm re-enters ALARM (a flap)
    after = [e for e in _executions(r.world) if e["executionArn"] not in before]
    if not deliveries or len(after) != 1:
        raise ScenarioFailed(NAME, "retrain_trigger", f"{len(after)} executions started: {deliveries}")
    if record.status != "SUCCEEDED" or "Gate" not in [s.name for s in record.states]:
        raise ScenarioFailed(
            NAME, record.states[-1].name if record.states else "(none)", f"the retrain {record.status}"
        )
    notes = {
        "category": category,
        "max_psi": report["max_psi"],
        "drifted": report["drifted"],
        "alarm": alarm["AlarmName"],
        "deliveries": deliveries,
        "execution": after[0]["name"],
    }
    found = agree.check(r.settings, r.endpoint, r.request(), r.world.client("s3"))
    if not found.agrees:
        raise ScenarioFailed(NAME, "(after the run)", "; ".join(f"{k}={v}" for k, v in found.rows()))
    return ScenarioResult(NAME, record, found, notes)


def _follow(r: Rehearsal, execution: dict[str, Any], on_state: OnState | None) -> runner.ExecutionRecord:
    """Follow the triggered execution to its end, with production traffic from its release states."""
    sfn = r.world.client("stepfunctions")
    execution_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    with traffic(r) as (_counts, go):

        def watch(record: runner.StateRecord) -> None:
            if record.name in RELEASE_STATES:
                go.set()
            if on_state:
                on_state(record)

        record = runner.follow(
            sfn, execution["executionArn"], execution_input, on_state=watch, approver=lambda _request: True
        )
    runner.save(r.home, record)
    return record
