"""Properties of the rendered pipeline definition that AWS would otherwise only reveal at run time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

from rankops.pipeline.local import definition_template
from stepfunctions.definition import EXECUTION_TIMEOUT_S

DEFINITION = json.loads(definition_template())
JOB_NAME = re.compile(
    r"States\.Format\('\{\}-([a-z-]+)-\{\}-\{\}', \$\.run\.job_prefix, \$\.job_id, \$\$\.State\.RetryCount\)"
)


def all_states(states: dict[str, Any] = DEFINITION["States"]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for nested in [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]:
            if nested:
                yield from all_states(nested["States"])


def targets(state: dict[str, Any]) -> set[str]:
    found = {state.get("Next"), state.get("Default")}
    found |= {c.get("Next") for c in state.get("Choices", [])} | {c["Next"] for c in state.get("Catch", [])}
    return {t for t in found if t}


def predecessors(name: str) -> set[str]:
    return {n for n, s in DEFINITION["States"].items() if name in targets(s)}


@pytest.mark.parametrize("env", ["local", "dev", "staging", "prod"])
def test_every_job_name_fits_sagemakers_limits(env: str) -> None:
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateProcessingJob")
        .input_shape.members["ProcessingJobName"]
    )
    kinds = JOB_NAME.findall(json.dumps(DEFINITION).replace('\\"', '"'))
    assert {"processing", "training", "evaluation", "registry-register", "registry-promote"} <= set(kinds)
    for kind in kinds:
        name = f"rankops-{env}-{kind}-1a2b3c4d-2"  # job_id: the UUID's first group; retries 0..2
        assert len(name) <= shape.metadata["max"] and re.fullmatch(shape.metadata["pattern"], name), name


def test_the_run_id_in_job_names_is_short_and_retries_get_new_names() -> None:
    configure = DEFINITION["States"]["Configure"]["Parameters"]
    assert configure["job_id.$"] == "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0)"
    names = [v for _, s in all_states() for k, v in s.get("Parameters", {}).items() if k.endswith("JobName.$")]
    assert names and all("$$.State.RetryCount" in n for n in names)


def test_every_task_retries_transient_errors_and_catches_the_rest() -> None:
    for name, state in all_states():
        if state["Type"] == "Task":
            assert state.get("Retry"), name
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), name


def test_approval_is_deployment_configuration_and_comes_before_users_see_the_challenger() -> None:
    configure = DEFINITION["States"]["Configure"]["Parameters"]
    assert configure["approval_required"] == "${ApprovalRequired}", "not from the execution input"
    assert "approval_required" not in DEFINITION["States"]["Defaults"]["Result"]
    assert "$.run.approval_required" not in json.dumps(DEFINITION)
    approvals = {n for n, s in all_states() if s.get("Resource", "").endswith("sns:publish.waitForTaskToken")}
    assert approvals == {"ApproveFirstRelease", "Approval"}
    assert predecessors("Deploy") == {"ApproveFirstRelease?", "ApproveFirstRelease"}
    assert predecessors("Canary") == {"Approval?", "Approval"}
    assert predecessors("Approval?") == {"ShadowOk?"}, "after the shadow, whose evidence the approver sees"


def test_a_rerun_of_the_champion_stops_before_any_release_step() -> None:
    promote = DEFINITION["States"]["Promote?"]["Choices"][0]
    assert promote == {"Variable": "$.gate.result.already_champion", "BooleanEquals": True, "Next": "AlreadyChampion"}
    assert DEFINITION["States"]["AlreadyChampion"]["Type"] == "Succeed"


def test_no_polling_loop_can_wait_forever() -> None:
    assert DEFINITION["TimeoutSeconds"] == EXECUTION_TIMEOUT_S
    for name, state in all_states():
        if state["Type"] == "Choice":
            default = state.get("Default")
            states = DEFINITION["States"] if default in DEFINITION["States"] else dict(all_states())
            assert states.get(default, {}).get("Type") != "Wait", f"{name}: unknown statuses must not loop"


def test_every_endpoint_change_is_waited_for() -> None:
    """Release steps change the endpoint asynchronously: each is followed by the DescribeEndpoint loop."""
    for name, state in all_states():
        comment = state.get("Comment", "")
        if comment.startswith("release:") and comment not in ("release: check", "release: baseline", "release: route"):
            assert state["Next"].endswith("Wait"), name


def test_the_off_policy_gate_sits_between_the_gate_and_any_release_and_stops_on_the_reject_path() -> None:
    states = DEFINITION["States"]
    assert predecessors("OffPolicy") == {"Promote?"} and predecessors("Register") == {"OffPolicyOk?"}
    assert states["OffPolicy"]["Next"] == "OffPolicyGate" and states["OffPolicyGate"]["Next"] == "OffPolicyOk?"
    choice = states["OffPolicyOk?"]
    assert choice["Choices"] == [
        {"Variable": "$.offpolicy.result.stop", "BooleanEquals": True, "Next": "OffPolicyRejected"}
    ]
    assert choice["Default"] == "Register", "pass and inconclusive go on to the shadow"
    assert states["OffPolicyRejected"]["Next"] == "NotPromoted", "nothing registered, the champion stays"
