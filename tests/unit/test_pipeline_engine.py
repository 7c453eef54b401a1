"""Sub-second smoke test of the moto seams the local pipeline runner relies on.

If a moto upgrade moves one of them, this fails loudly (moto is pinned in setup.py)."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rankops.pipeline.engine import MOTO_CONFIG, LocalTaskFailed, installed

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
calls: dict[str, int] = {}
FUNCTION_VARIABLE = "RANKOPS_TEST_FUNCTION_ENV"  # set on the function only, as a template sets it


def flaky_lambda(event: dict[str, Any], context: Any) -> dict[str, Any]:
    calls["lambda"] = calls.get("lambda", 0) + 1
    if event.get("fail"):
        raise ValueError("planned lambda failure")
    return {"seen": event["value"] * 2, "env": os.environ.get(FUNCTION_VARIABLE)}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("noop.py", "")
    return buffer.getvalue()


def run(definition: dict[str, Any], payload: dict[str, Any], handlers: dict[str, Any]) -> tuple[dict, list[dict]]:
    with mock_aws(config=MOTO_CONFIG), installed(handlers, time_scale=0.0):
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="flaky",
            Runtime="python3.11",
            Role=role,
            Handler=f"{__name__}.flaky_lambda",
            Code={"ZipFile": _zip()},
            Environment={"Variables": {FUNCTION_VARIABLE: "from-the-function"}},
        )
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="smoke", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
        # wait for the execution to end (pytest's timeout bounds a hang; no figure to miss on a busy machine)
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            time.sleep(0.01)
        return described, sfn.get_execution_history(executionArn=execution)["events"]


DEFINITION = {
    "StartAt": "Train",
    "States": {
        "Train": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "Parameters": {"TrainingJobName.$": "$.name"},
            "ResultPath": "$.train",
            "Retry": [
                {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 60, "MaxAttempts": 2, "BackoffRate": 2.0}
            ],
            "Next": "Nap",
        },
        "Nap": {"Type": "Wait", "Seconds": 3600, "Next": "Describe"},
        "Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
            "Parameters": {"EndpointName": "ep"},
            "ResultPath": "$.endpoint",
            "Next": "Lambda",
        },
        "Lambda": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "flaky", "Payload": {"value": 21, "fail.$": "$.fail_lambda"}},
            "ResultSelector": {"seen.$": "$.Payload.seen", "env.$": "$.Payload.env"},
            "ResultPath": "$.lambda",
            "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
}


def test_seams_run_local_jobs_lambdas_retries_and_shortened_waits() -> None:
    attempts: list[str] = []

    def sagemaker(action: str, params: dict[str, Any]) -> dict[str, Any]:
        attempts.append(action)
        if action == "createTrainingJob" and len(attempts) < 3:
            raise LocalTaskFailed({"TrainingJobStatus": "Failed", "FailureReason": "transient"})
        if action == "describeEndpoint":
            return {"EndpointStatus": "InService", "EndpointName": params["EndpointName"]}
        return {"TrainingJobStatus": "Completed", "TrainingJobName": params["TrainingJobName"]}

    described, events = run(DEFINITION, {"name": "job-1", "fail_lambda": False}, {"sagemaker": sagemaker})
    assert described["status"] == "SUCCEEDED", events
    output = json.loads(described["output"])
    assert output["train"] == {"TrainingJobStatus": "Completed", "TrainingJobName": "job-1"}
    assert output["endpoint"]["EndpointStatus"] == "InService"
    assert output["lambda"] == {"seen": 42, "env": "from-the-function"}, "the handler ran with its function's env"
    assert FUNCTION_VARIABLE not in os.environ, "and this process's environment is restored after the call"
    assert attempts == ["createTrainingJob"] * 3 + ["describeEndpoint"], "failed twice, retried, then succeeded"
    # Unshortened, the two 60 s retry intervals and the 1 h wait would take over an hour: the test
    # ending at all (pytest's timeout is 600 s) is the proof that they were shortened.
    assert [e["type"] for e in events].count("WaitStateExited") == 1


def test_failures_surface_as_aws_reports_them() -> None:
    def always_fails(action: str, params: dict[str, Any]) -> dict[str, Any]:
        raise LocalTaskFailed({"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: boom"})

    described, events = run(DEFINITION, {"name": "job-2", "fail_lambda": False}, {"sagemaker": always_fails})
    assert described["status"] == "FAILED"
    failed = [e for e in events if e["type"] == "TaskFailed"]
    assert failed and failed[-1]["taskFailedEventDetails"]["error"] == "States.TaskFailed"
    assert json.loads(failed[-1]["taskFailedEventDetails"]["cause"])["FailureReason"] == "AlgorithmError: boom"


def test_lambda_errors_reach_catch_with_their_type() -> None:
    def ok(action: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"EndpointStatus": "InService"}

    described, _ = run(DEFINITION, {"name": "job-3", "fail_lambda": True}, {"sagemaker": ok})
    assert described["status"] == "SUCCEEDED"
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "ValueError"
    assert json.loads(error["Cause"])["errorMessage"] == "planned lambda failure"


def test_seams_are_removed_after_the_run() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    before = (state_task_factory.state_task_service_for, LambdaSimpleBackend.invoke)
    with installed({}):
        assert state_task_factory.state_task_service_for is not before[0]
    assert (state_task_factory.state_task_service_for, LambdaSimpleBackend.invoke) == before
    with pytest.raises(RuntimeError), installed({}):
        raise RuntimeError("still restored")
    assert state_task_factory.state_task_service_for is before[0]
