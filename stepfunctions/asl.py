"""Small builders for Amazon States Language fragments used by the pipeline definition.

They return plain dicts (the definition is data); they exist so every Task gets the same
Retry/Catch policy and every SageMaker job the same shape, instead of copies.
"""

from __future__ import annotations

from typing import Any

# Transient failures worth retrying quickly (throttling, service hiccups) ...
TRANSIENT_ERRORS = [
    "SageMaker.AmazonSageMakerException",
    "SageMaker.ThrottlingException",
    "SageMaker.ResourceLimitExceeded",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "EMRServerless.ThrottlingException",
    "SNS.ThrottledException",
]


def retry(job: bool = False) -> list[dict[str, Any]]:
    """Backoff for transient errors; a failed *job* (capacity, spot) gets one more try later."""
    rules: list[dict[str, Any]] = [
        {
            "ErrorEquals": TRANSIENT_ERRORS,
            "IntervalSeconds": 5,
            "MaxAttempts": 4,
            "BackoffRate": 2.0,
            "JitterStrategy": "FULL",
        }
    ]
    if job:
        rules.append(
            {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 60, "MaxAttempts": 2, "BackoffRate": 2.0}
        )
    return rules


def catch(target: str, result_path: str = "$.failure") -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": target}]


def task(
    resource: str,
    parameters: dict[str, Any],
    *,
    next_state: str | None,
    on_error: str,
    result_path: str | None = None,
    result_selector: dict[str, Any] | None = None,
    job: bool = False,
    timeout_s: int | None = None,
    comment: str = "",
    failure_path: str = "$.failure",
) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": resource, "Parameters": parameters}
    if comment:
        state["Comment"] = comment
    if result_selector:
        state["ResultSelector"] = result_selector
    if result_path is not None:
        state["ResultPath"] = result_path
    if timeout_s:
        state["TimeoutSeconds"] = timeout_s
    state["Retry"] = retry(job)
    state["Catch"] = catch(on_error, failure_path)
    state.update({"Next": next_state} if next_state else {"End": True})
    return state


def lambda_task(
    function: str,
    payload: dict[str, Any],
    *,
    next_state: str | None,
    on_error: str,
    result_path: str,
    comment: str = "",
    failure_path: str = "$.failure",
) -> dict[str, Any]:
    """Invoke a pipeline Lambda; its return value (``Payload``) lands at ``result_path``."""
    return task(
        "arn:aws:states:::lambda:invoke",
        {"FunctionName": function, "Payload": payload},
        next_state=next_state,
        on_error=on_error,
        result_path=result_path,
        result_selector={"result.$": "$.Payload"},
        comment=comment,
        failure_path=failure_path,
    )


def notify(topic: str, subject: str, message: dict[str, Any], next_state: str | None) -> dict[str, Any]:
    """Publish to SNS (best effort: a notification failure must not mask the original outcome)."""
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": topic, "Subject": subject, "Message": message},
        "ResultPath": None,
        "Retry": retry(),
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": next_state}] if next_state else [],
    }
    state.update({"Next": next_state} if next_state else {"End": True})
    if not state["Catch"]:
        del state["Catch"]
    return state
