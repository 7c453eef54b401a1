"""The local runner's own duties: approvals answered through task tokens, a run that exceeds
its time stopped and recorded, the executed text recorded (small definitions on moto)."""

from __future__ import annotations

import json
from typing import Any

from rankops.pipeline.runner import LocalResources, run_definition, sha

TOPIC = "arn:aws:sns:eu-west-1:123456789012:approvals"
APPROVAL = {
    "StartAt": "Approval",
    "States": {
        "Approval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
            "Parameters": {
                "TopicArn": TOPIC,
                "Message": {"version.$": "$.version", "task_token.$": "$$.Task.Token"},
            },
            "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Rejected"}],
            "Next": "Released",
        },
        "Released": {"Type": "Succeed"},
        "Rejected": {"Type": "Fail", "Error": "Rejected"},
    },
}
RESOURCES = LocalResources(lambdas={}, topics=("approvals",))


def run(definition: dict[str, Any], **options: Any) -> Any:
    return run_definition(json.dumps(definition), {"version": "7"}, {}, RESOURCES, **options)


def test_an_approval_request_reaches_the_approver_with_its_evidence_and_approves() -> None:
    seen: list[dict[str, Any]] = []
    record = run(APPROVAL, approver=lambda request: seen.append(request) or True)
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    assert seen == [{"version": "7"}], "the message, without the token"
    assert record.approvals == [{"version": "7", "approved": True}]
    assert record.output["approval"] == {"approved": True, "by": "local"}


def test_a_rejection_fails_the_task_so_its_catch_runs() -> None:
    record = run(APPROVAL, approver=lambda request: False)
    assert record.status == "FAILED" and record.error == "Rejected"
    assert [s.name for s in record.states] == ["Approval", "Rejected"]
    assert record.approvals == [{"version": "7", "approved": False}]


def test_with_nobody_to_ask_an_approval_is_rejected_not_left_hanging() -> None:
    record = run(APPROVAL, timeout_s=60)
    assert record.status == "FAILED" and record.approvals[0]["approved"] is False


def test_a_run_over_its_time_is_stopped_and_recorded() -> None:
    slow = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 30, "End": True}}}
    record = run(slow, time_scale=1.0, timeout_s=0.5)
    assert record.status == "ABORTED"
    assert record.error == "LocalTimeout" and "exceeded" in str(record.cause)


def test_the_record_names_the_text_the_interpreter_stored() -> None:
    record = run(APPROVAL, approver=lambda request: True)
    assert record.definition_sha == sha(json.dumps(APPROVAL))


def test_the_cli_summary_says_when_a_rerun_released_nothing() -> None:
    from types import SimpleNamespace

    from rankops.cli.pipeline import summary

    gate = {"already_champion": True, "version": "2", "decision": "promote", "reasons": ["ok"]}
    record = SimpleNamespace(
        name="x",
        status="SUCCEEDED",
        started=0.0,
        ended=1.0,
        output={"gate": {"result": gate}},
        approvals=[],
        error=None,
    )
    assert "version 2 is already the champion" in summary(record)
    record.output["gate"]["result"] = {**gate, "already_champion": False}
    assert "gate: promote version 2 - ok" in summary(record)
