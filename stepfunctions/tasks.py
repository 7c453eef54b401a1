"""Task builders of the pipeline definition: SageMaker jobs, release steps, polling loops.

Each returns plain ASL (dicts) so :mod:`stepfunctions.definition` reads as the state graph and
every job or release step has one shape, not copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rankops.release.routing_document import routing_uri
from rankops.release.sagemaker import CHALLENGER_VARIANT
from stepfunctions.asl import catch, lambda_task, retry

JOB_TIMEOUT_S = 4 * 3600
POLL_SECONDS = 30
APPROVAL_TIMEOUT_S = 3 * 86400  # an unanswered approval rejects the release after this


def uri(resources: Mapping[str, str], bucket: str, path: str) -> str:
    """``States.Format`` expression for ``s3://<bucket>/pipeline/<execution>/<path>``."""
    return f"States.Format('s3://{resources[bucket]}/pipeline/{{}}/{path}', $.execution)"


def job_name(kind: str) -> str:
    """``<prefix>-<kind>-<run id>-<retry count>``: unique per attempt, at most 63 characters
    (the longest, ``rankops-staging-registry-promote-1a2b3c4d-2``, has 43)."""
    return f"States.Format('{{}}-{kind}-{{}}-{{}}', $.run.job_prefix, $.job_id, $$.State.RetryCount)"


def job_environment(r: Mapping[str, str]) -> dict[str, str]:
    """What every job container needs to find the lake and the registry (RANKOPS_* settings)."""
    return {
        "RANKOPS_ENV": r["Environment"],
        "RANKOPS_LAKE__RAW": f"s3://{r['RawBucket']}",
        "RANKOPS_LAKE__FEATURES": f"s3://{r['FeaturesBucket']}",
        "RANKOPS_LAKE__ARTIFACTS": f"s3://{r['ArtifactsBucket']}",
        "RANKOPS_MLFLOW__TRACKING_URI": r["MlflowTrackingServerArn"],
    }


def job_arguments(*extra: str) -> str:
    """Container arguments: environment, execution id, the input's config overrides, then ``extra``
    (``extra`` items are literal strings, ``${Key}`` substitutions included, or ``$.`` paths)."""
    items = ", ".join(e if e.startswith("$.") else f"'{e}'" for e in extra)
    return (
        "States.Array('--env', $.run.env, '--pipeline-execution-id', $.execution, "
        f"'--overrides', States.JsonToString($.run.overrides){', ' + items if items else ''})"
    )


def network(r: Mapping[str, str]) -> dict[str, Any]:
    return {
        "Subnets.$": f"States.StringSplit('{r['JobSubnetIds']}', ',')",
        "SecurityGroupIds": [r["JobSecurityGroupId"]],
    }


def processing(
    r: Mapping[str, str],
    kind: str,
    module: str,
    arguments: str,
    inputs: list[dict[str, Any]],
    outputs: list[str],
    *,
    next_state: str,
    on_error: str,
    result_path: str,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "ProcessingJobName.$": job_name(kind),
        "RoleArn": r["SageMakerJobRoleArn"],
        "AppSpecification": {
            "ImageUri": r["ImageUri"],
            "ContainerEntrypoint": ["python3", "-m", module],
            "ContainerArguments.$": arguments,
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": r["ProcessingInstanceType"],
                "VolumeSizeInGB": 50,
                "VolumeKmsKeyId": r["JobVolumeKmsKeyArn"],
            }
        },
        "NetworkConfig": {"VpcConfig": network(r)},
        "StoppingCondition": {"MaxRuntimeInSeconds": JOB_TIMEOUT_S},
        "Environment": job_environment(r),
    }
    if inputs:
        params["ProcessingInputs"] = inputs
    if outputs:
        params["ProcessingOutputConfig"] = {
            "KmsKeyId": r["JobOutputKmsKeyArn"],
            "Outputs": [
                {
                    "OutputName": o,
                    "S3Output": {
                        "S3Uri.$": uri(r, "ArtifactsBucket", f"{kind}/{o}"),
                        "LocalPath": f"/opt/ml/processing/output/{o}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
                for o in outputs
            ],
        }
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
        "Parameters": params,
        "ResultSelector": {"job.$": "$.ProcessingJobName", "status.$": "$.ProcessingJobStatus"},
        "ResultPath": result_path,
        "Retry": retry(job=True),
        "Catch": catch(on_error),
        "Next": next_state,
    }
    return state


def processing_input(name: str, uri: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri.$": uri,
            "LocalPath": f"/opt/ml/processing/input/{name}",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


MODEL_ACTIONS = ("deploy", "shadow", "canary", "promote")  # release actions that may create a SageMaker model


def release(
    r: Mapping[str, str],
    action: str,
    *,
    next_state: str | None,
    on_error: str,
    result_path: str,
    extra: dict[str, Any] | None = None,
    failure_path: str = "$.failure",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "action": action,
        "endpoint": r["EndpointName"],
        "execution.$": "$.execution",
        "version.$": "$.gate.result.version",
        "model_data_url.$": "$.training.model_data",
        "image": r["ImageUri"],
        "model_role": r["ServingModelRoleArn"],
        "instance_type": r["EndpointInstanceType"],
        "subnets": r["JobSubnetIds"],
        "security_group": r["ServingSecurityGroupId"],
        "alarms": r["RollbackAlarmNames"],
        # the sticky canary's routing document, for callers (rankops.release.routing_document)
        "routing_uri": routing_uri(r["ArtifactsBucket"], r["EndpointName"]),
        "model_environment": {
            "RANKOPS_ENV": r["Environment"],
            "RANKOPS_MLFLOW__TRACKING_URI": r["MlflowTrackingServerArn"],
        },
        **(extra or {}),
    }
    if action in MODEL_ACTIONS:  # the gate's digests: the model archive is verified before a model is made
        payload["artifacts.$"] = "$.gate.result.artifacts"
    return lambda_task(
        r["LambdaArn_release"],
        payload,
        next_state=next_state,
        on_error=on_error,
        result_path=result_path,
        comment=f"release: {action}",
        failure_path=failure_path,
    )


def check(stage: str) -> dict[str, Any]:
    """What a release check judges: the challenger variant (a shadow variant in a shadow, a weighted
    production variant in a canary) over the soak window that just passed. The thresholds are the
    environment's (``CHECK_THRESHOLDS`` on the release Lambda)."""
    return {"stage": stage, "variant_name": CHALLENGER_VARIANT, "window_s.$": "$.run.soak_seconds"}


UPDATING = ("Creating", "Updating", "SystemUpdating")


def wait_for_endpoint(
    r: Mapping[str, str],
    prefix: str,
    done: str,
    on_error: str,
    failure_path: str = "$.failure",
    expect_config: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll ``DescribeEndpoint`` while the update is in progress; InService goes on to ``done``.
    Any other status (Failed, RollingBack, OutOfService, ...) is recorded at ``failure_path``
    and goes to ``on_error``: the loop never waits on an endpoint that will not settle.
    With ``expect_config`` (a path to the endpoint config the step deployed), InService on another
    config is a failure too: a guarded update that SageMaker rolled back by alarm ends InService
    on the old config, and a poll may miss the RollingBack status in between."""
    in_service: dict[str, Any] = {"Variable": "$.endpoint.status", "StringEquals": "InService"}
    if expect_config:
        in_service = {"And": [in_service, {"Variable": "$.endpoint.config", "StringEqualsPath": expect_config}]}
    return {
        f"{prefix}Wait": {"Type": "Wait", "Seconds": POLL_SECONDS, "Next": f"{prefix}Describe"},
        f"{prefix}Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
            "Parameters": {"EndpointName": r["EndpointName"]},
            "ResultSelector": {"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"},
            "ResultPath": "$.endpoint",
            "Retry": retry(),
            "Catch": catch(on_error, failure_path),
            "Next": f"{prefix}Ready?",
        },
        f"{prefix}Ready?": {
            "Type": "Choice",
            "Choices": [
                {**in_service, "Next": done},
                {
                    "Or": [{"Variable": "$.endpoint.status", "StringEquals": s} for s in UPDATING],
                    "Next": f"{prefix}Wait",
                },
            ],
            "Default": f"{prefix}Failed",
        },
        f"{prefix}Failed": {
            "Type": "Pass",
            "Parameters": {
                "Error": "EndpointUpdateFailed",
                "Cause.$": "States.Format('endpoint {} is {} on config {}', '"
                + r["EndpointName"]
                + "', $.endpoint.status, $.endpoint.config)",
            },
            "ResultPath": failure_path,
            "Next": on_error,
        },
    }


def approval(
    topic: str,
    name: str,
    subject: str,
    *,
    next_state: str,
    on_error: str,
    details: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """``<name>?`` (is an approval required here?) and ``<name>``: publish the release's evidence
    with a task token and wait for ``SendTaskSuccess`` (approve) or ``SendTaskFailure`` (reject)."""
    return {
        f"{name}?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.approval_required", "StringEquals": "true", "Next": name}],
            "Default": next_state,
        },
        name: {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
            "Parameters": {
                "TopicArn": topic,
                "Subject": subject,
                "Message": {
                    "execution.$": "$.execution",
                    "version.$": "$.gate.result.version",
                    "champion_version.$": "$.gate.result.champion_version",
                    "metrics.$": "$.gate.result.metrics",
                    # what this run changed (allow-listed, checked by the jobs; also in the gate record)
                    "overrides.$": "$.run.overrides",
                    **(details or {}),
                    "task_token.$": "$$.Task.Token",
                    "approve": "aws stepfunctions send-task-success --task-token <task_token> --task-output '{}'",
                    "reject": "aws stepfunctions send-task-failure --task-token <task_token> --error Rejected",
                },
            },
            "TimeoutSeconds": APPROVAL_TIMEOUT_S,
            "ResultPath": "$.approval",
            "Retry": retry(),
            "Catch": catch(on_error),
            "Next": next_state,
        },
    }


def registry(r: Mapping[str, str], action: str, *, next_state: str, on_error: str) -> dict[str, Any]:
    return processing(
        r,
        f"registry-{action}",
        "sagemaker_jobs.registry.entry",
        job_arguments("--action", action, "--version", "$.gate.result.version"),
        [],
        [],
        next_state=next_state,
        on_error=on_error,
        result_path=f"$.registry_{action}",
    )


def canary(r: Mapping[str, str], *, next_state: str, on_error: str) -> dict[str, Any]:
    """The sticky canary: for each share of ``run.canary_steps``, set the weights, wait for the
    endpoint, publish the routing document, soak, check; any failed step goes to ``on_error``."""
    return {
        "Type": "Map",
        "ItemsPath": "$.run.canary_steps",
        "MaxConcurrency": 1,
        "ResultPath": "$.canary",
        "ItemSelector": {
            "share.$": "$$.Map.Item.Value",
            "execution.$": "$.execution",
            "run.$": "$.run",
            "gate.$": "$.gate",
            "training.$": "$.training",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "SetCanaryShare",
            "States": {
                "SetCanaryShare": release(
                    r,
                    "canary",
                    next_state="CanaryShiftedWait",
                    on_error="CanaryFailed",
                    result_path="$.release",
                    extra={"share.$": "$.share"},
                ),
                **wait_for_endpoint(r, "CanaryShifted", "PublishRouting", "CanaryFailed"),
                "PublishRouting": release(
                    r,
                    "route",
                    next_state="CanarySoak",
                    on_error="CanaryFailed",
                    result_path="$.routing",
                    extra={"share.$": "$.share"},
                ),
                "CanarySoak": {"Type": "Wait", "SecondsPath": "$.run.soak_seconds", "Next": "CanaryCheck"},
                "CanaryCheck": release(
                    r,
                    "check",
                    next_state="CanaryOk?",
                    on_error="CanaryFailed",
                    result_path="$.check",
                    extra=check("canary"),
                ),
                "CanaryOk?": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.check.result.ok", "BooleanEquals": True, "Next": "StepDone"}],
                    "Default": "CanaryFailed",
                },
                "StepDone": {
                    "Type": "Pass",
                    "Parameters": {"share.$": "$.share", "check.$": "$.check.result"},
                    "End": True,
                },
                "CanaryFailed": {
                    "Type": "Fail",
                    "Error": "CanaryRejected",
                    "Cause": "the canary's checks or release step failed",
                },
            },
        },
        "Catch": catch(on_error),
        "Next": next_state,
    }
