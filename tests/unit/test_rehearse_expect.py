"""A scenario that ends elsewhere says what turned it: the judgements in the last state's output
that said no, with their reasons (a CI log cut short still shows why)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rankops.pipeline.runner import ExecutionRecord, StateRecord
from rankops.rehearse.expect import expect, verdicts
from rankops.rehearse.outcome import ScenarioFailed


def _record(status: str, states: list[str], last_output: dict[str, Any]) -> ExecutionRecord:
    events = [
        {"type": "TaskStateExited", "id": i + 1, "stateExitedEventDetails": {"name": name, "output": "{}"}}
        for i, name in enumerate(states[:-1])
    ]
    events.append(
        {
            "type": "TaskStateExited",
            "id": len(states),
            "stateExitedEventDetails": {"name": states[-1], "output": json.dumps(last_output)},
        }
    )
    return ExecutionRecord(
        "x", status, 0.0, 1.0, {}, None, None, None, [StateRecord(s, "Task", 0.0, 1.0, "succeeded") for s in states],
        events,
    )  # fmt: skip


ROLLED_BACK = {
    "gate": {"result": {"promote": True, "reasons": ["ndcg ok"]}},
    "canary": [
        {"share": 0.1, "check": {"ok": True, "reasons": []}},
        {"share": 0.5, "check": {"ok": False, "action": "rollback", "reasons": ["p95 latency 900 ms (limit 500)"]}},
    ],
}


def test_verdicts_name_every_judgement_that_said_no_and_only_those() -> None:
    said = verdicts(_record("FAILED", ["Gate", "Canary", "Rollback"], ROLLED_BACK))
    assert said == "canary[1].check: p95 latency 900 ms (limit 500)"
    assert verdicts(_record("SUCCEEDED", ["Gate", "Done"], {"gate": {"result": {"promote": True}}})) == ""
    stopped = {"gate": {"result": {"promote": False, "reasons": ["ndcg -3.3% (allowed -0.5%)"]}}}
    assert verdicts(_record("FAILED", ["Gate", "Rejected"], stopped)) == "gate.result: ndcg -3.3% (allowed -0.5%)"


def test_expect_says_what_turned_the_execution() -> None:
    record = _record("FAILED", ["Gate", "Canary", "Canary", "Rollback"], ROLLED_BACK)
    with pytest.raises(ScenarioFailed) as failed:
        expect("alarm-after-promote", record, "FAILED", ["Canary", "Promote"])
    message = str(failed.value)
    assert "never reached Promote; said no: canary[1].check: p95 latency 900 ms" in message
    assert message.endswith("(visited Gate, Canary, Rollback)"), "each state once, in first-visit order"
