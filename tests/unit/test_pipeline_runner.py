"""The local runner's own duties: approvals answered through task tokens, a run that exceeds
its time stopped and recorded, the executed text recorded (small definitions on moto)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rankops.pipeline.engine import MOTO_CONFIG
from rankops.pipeline.history import POLL_S, in_process, new_events, poll_interval
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


class PagedHistory:
    """GetExecutionHistory as Step Functions pages it: ``maxResults`` per page, ``reverseOrder``,
    ``nextToken``; counts the events it returned (what a poll costs)."""

    def __init__(self, count: int) -> None:
        self.events = [{"id": i, "type": "PassStateEntered"} for i in range(1, count + 1)]
        self.returned = 0

    def get_execution_history(
        self, executionArn: str, maxResults: int = 1000, reverseOrder: bool = False, nextToken: str | None = None
    ) -> dict[str, Any]:
        ordered = list(reversed(self.events)) if reverseOrder else self.events
        start = int(nextToken or 0)
        page = ordered[start : start + maxResults]
        self.returned += len(page)
        more = start + maxResults < len(ordered)
        return {"events": page, **({"nextToken": str(start + maxResults)} if more else {})}


def test_new_events_pages_from_the_newest_and_stops_at_what_was_seen() -> None:
    service = PagedHistory(2_500)
    fresh = new_events(service, "arn", after_id=2_480)
    assert [e["id"] for e in fresh] == list(range(2_481, 2_501)), "oldest first"
    assert service.returned == 1_000, "one page: the newest"
    everything = new_events(PagedHistory(2_500), "arn", after_id=0)
    assert [e["id"] for e in everything] == list(range(1, 2_501)), "every page when nothing was seen"


def test_a_history_longer_than_a_page_is_followed_to_its_end() -> None:
    """1,200 loop turns (3,600+ events, more than three of the API's pages) are all reported, in order."""
    record = run(LOOP, timeout_s=600)
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    names = [s.name for s in record.states]
    assert names.count("Turn") == 1200 and names[-1] == "Done"
    assert [e["id"] for e in record.events] == list(range(1, len(record.events) + 1))


LOOP = {
    "StartAt": "Init",
    "States": {
        "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.n", "Next": "Turn"},
        "Turn": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More?"},
        "More?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericLessThan": 1200, "Next": "Turn"}],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def test_the_poll_interval_keeps_polling_to_a_fifth_of_the_time() -> None:
    assert poll_interval(0.0) == POLL_S[0], "a cheap poll: 50 ms"
    assert poll_interval(0.1) == pytest.approx(0.4), "four times the poll's own time"
    assert poll_interval(5.0) == POLL_S[1], "never longer than 2 s"


def test_the_in_process_reader_sees_the_events_the_api_returns() -> None:
    """moto's own event list (what the runner reads when the execution runs in this process)
    equals GetExecutionHistory's answer, event for event; an execution moto does not know (AWS's,
    another process's) is read through the API."""
    import time

    import boto3
    from moto import mock_aws

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]
        role = boto3.client("iam", region_name="eu-west-1").create_role(RoleName="r", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        machine = sfn.create_state_machine(name="m", definition=json.dumps(LOOP), roleArn=role)["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            time.sleep(0.05)
        read = in_process(arn)
        assert read is not None
        through_api = new_events(sfn, arn, 0)
        assert len(through_api) > 30
        mine = read(0)
        assert [(e["id"], e["type"], e["timestamp"].timestamp()) for e in mine] == [
            (e["id"], e["type"], e["timestamp"].timestamp()) for e in through_api
        ]
        for own, api in zip(mine, through_api, strict=True):
            details = {k: v for k, v in api.items() if k.endswith("EventDetails")}
            assert {k: v for k, v in own.items() if k.endswith("EventDetails")} == details
        assert read(through_api[-3]["id"]) == mine[-2:], "only what came after"
        assert in_process(arn.replace(":m:", ":elsewhere:")) is None
