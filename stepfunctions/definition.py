"""The retraining pipeline, written once and rendered to Amazon States Language.

``render(resources)`` returns the state machine as a dict; every resource name or ARN is
``resources[key]``. CDK calls it with ``"${key}"`` placeholders and deploys the text with
``DefinitionSubstitutions`` (infra/constructs/pipeline_definition_source.py); the local runner
substitutes local values (rankops/pipeline/local.py) and executes the same text.

    Configure -> AllowInput -> [BuildFeatures] -> CheckFeatures -> Processing -> Training -> Evaluation
      -> Gate? -- reject --> Rejected (notify, champion untouched)
               -- same version as the champion (a re-run) --> AlreadyChampion (nothing to do)
               -- promote -> OffPolicy -> stop? -- yes --> OffPolicyRejected (notify, nothing registered)
                  (challenger vs champion on the feedback log's randomised answers; inconclusive goes on)
                  -> Register -> first release? -- yes --> [approval] -> Deploy -> Promote
                                                         -- no  --> Shadow -> Soak -> ShadowCheck
                                                                    -> [approval] (prod: task token + SNS)
                                                                    -> Canary (Map: weight -> soak -> check)
                                                                    -> Promote (blue/green) -> PromoteRegistry
      any failure after a deployment -> Rollback (endpoint + registry) -> Failed
      any failure before             -> NotifyFailure -> Failed          (the champion keeps serving)

The approval comes before any user sees the challenger (after the shadow, whose report it
carries); whether it is required is deployment configuration, not execution input. Job names
carry the retry count (SageMaker never reuses a name, even of a failed job), and the whole
execution has a timeout so a hung step cannot block the next scheduled run.

SageMaker jobs use the optimized ``.sync`` integrations; endpoint changes go through the
release Lambda (request building and release decisions live in tested Python, see
:mod:`rankops.release.endpoint`), and the state machine polls ``DescribeEndpoint`` with a
Wait/Choice loop, because there is no ``.sync`` form of ``UpdateEndpoint``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rankops.features.runs import run_name
from stepfunctions import offpolicy
from stepfunctions import tasks as t
from stepfunctions.asl import catch, lambda_task, notify, retry

RESOURCE_KEYS: tuple[str, ...] = (
    "Environment",
    "FeatureSet",
    "ApprovalRequired",
    "FailuresTopicArn",
    "ApprovalsTopicArn",
    "RawBucket",
    "FeaturesBucket",
    "ArtifactsBucket",
    "ImageUri",
    "SageMakerJobRoleArn",
    "JobVolumeKmsKeyArn",
    "JobOutputKmsKeyArn",
    "TrainingInstanceType",
    "ProcessingInstanceType",
    "JobSubnetIds",
    "JobSecurityGroupId",
    "MlflowTrackingServerArn",
    "EmrApplicationId",
    "EmrJobRoleArn",
    "EmrEntryPoint",
    "EndpointName",
    "ServingModelRoleArn",
    "EndpointInstanceType",
    "RollbackAlarmNames",
    "ServingSecurityGroupId",
    "DataCaptureUri",
    "LambdaArn_check_features",
    "LambdaArn_gate",
    "LambdaArn_release",
)
LAMBDAS: tuple[str, ...] = ("check_features", "gate", "release")
# A run ends within this, whatever hangs (an approval waits 3 days at most, jobs 4 h each):
# a stuck execution must not block the triggers, which refuse to start beside a running one.
EXECUTION_TIMEOUT_S = 4 * 86400
# The endpoint config Promote deployed: the poll after it must find the endpoint on it (an alarm
# during SageMaker's baking period rolls the update back to the old config, InService again).
PROMOTED_CONFIG = "$.release.result.endpoint_config"


def render_text(resources: Mapping[str, str]) -> str:
    """The definition as the exact JSON text that is deployed (CDK) and executed (local runner)."""
    return json.dumps(render(resources), indent=2, sort_keys=True)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Fill ``${Key}`` placeholders the way Step Functions' DefinitionSubstitutions does."""
    for key, value in values.items():
        text = text.replace("${" + key + "}", json.dumps(str(value))[1:-1])
    return text


def render(resources: Mapping[str, str]) -> dict[str, Any]:
    """The pipeline as ASL, with ``resources[key]`` for every key of :data:`RESOURCE_KEYS`."""
    r = resources
    failures, approvals = r["FailuresTopicArn"], r["ApprovalsTopicArn"]
    states: dict[str, dict[str, Any]] = {
        "Defaults": {
            "Type": "Pass",
            "ResultPath": "$.defaults",
            "Comment": "Execution input: snapshot (ISO time or 'latest'), reason, refresh_features, overrides "
            "(allow-listed settings, checked by every job: rankops/pipeline/execution_input.py); nothing else",
            "Result": {
                "input": {"snapshot": "latest", "reason": "manual", "refresh_features": False, "overrides": {}},
                "deployed": {
                    "canary_steps": [0.1, 0.5, 1.0],
                    "soak_seconds": 600,
                    "env": r["Environment"],
                    "job_prefix": f"rankops-{r['Environment']}",
                },
            },
            "Next": "Configure",
        },
        "Configure": {
            "Type": "Pass",
            "Parameters": {
                "requested.$": "States.JsonMerge($.defaults.input, $$.Execution.Input, false)",
                "deployed.$": "$.defaults.deployed",
                "execution.$": "$$.Execution.Name",
                # 8 hex digits: job names stay within SageMaker's 63 characters
                "job_id.$": "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0)",
                # from the deployment, never from the execution input: whoever may start a run
                # must not be able to skip the production approval
                "approval_required": r["ApprovalRequired"],
            },
            "Next": "AllowInput",
        },
        "AllowInput": {
            "Type": "Pass",
            "Comment": "the run: the allowed input keys, and the deployment's canary steps and soak time "
            "(any other input key, e.g. soak_seconds or canary_steps, is dropped here)",
            "Parameters": {
                "run": {
                    **{f"{key}.$": f"$.requested.{key}" for key in ("snapshot", "reason", "refresh_features")},
                    "overrides.$": "$.requested.overrides",
                    **{
                        f"{key}.$": f"$.deployed.{key}" for key in ("canary_steps", "soak_seconds", "env", "job_prefix")
                    },
                },
                "execution.$": "$.execution",
                "job_id.$": "$.job_id",
                "approval_required.$": "$.approval_required",
            },
            "Next": "RefreshFeatures?",
        },
        "RefreshFeatures?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.run.refresh_features", "BooleanEquals": True, "Next": "BuildFeatures"}],
            "Default": "CheckFeatures",
        },
        "BuildFeatures": {
            "Type": "Task",
            "Resource": "arn:aws:states:::emr-serverless:startJobRun.sync",
            "Parameters": {
                "ApplicationId": r["EmrApplicationId"],
                "ExecutionRoleArn": r["EmrJobRoleArn"],
                # one name rule with the hourly starter, which skips while any feature run is active
                "Name.$": f"States.Format('{run_name('{}-{}')}', $.job_id, $$.State.RetryCount)",
                "JobDriver": {
                    "SparkSubmit": {
                        "EntryPoint": r["EmrEntryPoint"],
                        "EntryPointArguments.$": "States.Array('--env', $.run.env, '--materialize')",
                    }
                },
            },
            "ResultSelector": {"state.$": "$.State"},
            "ResultPath": "$.features_job",
            "Retry": retry(job=True),
            "Catch": catch("NotifyFailure"),
            "Next": "CheckFeatures",
        },
        "CheckFeatures": lambda_task(
            r["LambdaArn_check_features"],
            {
                "status_uri": f"s3://{r['FeaturesBucket']}/{r['FeatureSet']}/_meta/status.json",
                "snapshot.$": "$.run.snapshot",
            },
            next_state="FeaturesReady?",
            on_error="NotifyFailure",
            result_path="$.features",
            comment="feature freshness and validation status",
        ),
        "FeaturesReady?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.features.result.ok", "BooleanEquals": True, "Next": "Processing"}],
            "Default": "FeaturesNotReady",
        },
        "FeaturesNotReady": notify(
            failures,
            "rankops: features not ready, no training",
            {"execution.$": "$.execution", "reasons.$": "$.features.result.reasons"},
            "Failed",
        ),
        "Processing": t.processing(
            r,
            "processing",
            "sagemaker_jobs.processing.entry",
            t.job_arguments("--snapshot", "$.run.snapshot"),
            [],
            ["train", "validation", "holdout", "manifest"],
            next_state="Training",
            on_error="NotifyFailure",
            result_path="$.processing",
        ),
        "Training": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "Parameters": {
                "TrainingJobName.$": t.job_name("training"),
                "RoleArn": r["SageMakerJobRoleArn"],
                "AlgorithmSpecification": {"TrainingImage": r["ImageUri"], "TrainingInputMode": "File"},
                "HyperParameters": {
                    "pipeline_execution_id.$": "$.execution",
                    "overrides.$": "States.JsonToString($.run.overrides)",
                },
                "InputDataConfig": [
                    {
                        "ChannelName": ch,
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3DataDistributionType": "FullyReplicated",
                                "S3Uri.$": t.uri(r, "ArtifactsBucket", f"processing/{ch}"),
                            }
                        },
                    }
                    for ch in ("train", "validation")
                ],
                "OutputDataConfig": {
                    "S3OutputPath.$": t.uri(r, "ArtifactsBucket", "training"),
                    "KmsKeyId": r["JobOutputKmsKeyArn"],
                },
                "ResourceConfig": {
                    "InstanceCount": 1,
                    "InstanceType": r["TrainingInstanceType"],
                    "VolumeSizeInGB": 50,
                    "VolumeKmsKeyId": r["JobVolumeKmsKeyArn"],
                },
                "VpcConfig": t.network(r),
                "StoppingCondition": {"MaxRuntimeInSeconds": t.JOB_TIMEOUT_S},
                "Environment": t.job_environment(r),
            },
            "ResultSelector": {"job.$": "$.TrainingJobName", "model_data.$": "$.ModelArtifacts.S3ModelArtifacts"},
            "ResultPath": "$.training",
            "Retry": retry(job=True),
            "Catch": catch("NotifyFailure"),
            "Next": "Evaluation",
        },
        "Evaluation": t.processing(
            r,
            "evaluation",
            "sagemaker_jobs.evaluation.entry",
            t.job_arguments("--on-pass", "none"),
            [
                t.processing_input("model", "$.training.model_data"),
                t.processing_input("holdout", t.uri(r, "ArtifactsBucket", "processing/holdout")),
            ],
            ["evaluation"],
            next_state="Gate",
            on_error="NotifyFailure",
            result_path="$.evaluation",
        ),
        "Gate": lambda_task(
            r["LambdaArn_gate"],
            {"evaluation_uri.$": t.uri(r, "ArtifactsBucket", "evaluation/evaluation/evaluation.json")},
            next_state="Promote?",
            on_error="NotifyFailure",
            result_path="$.gate",
            comment="the evaluation job's gate decision (challenger vs champion on the same holdout)",
        ),
        "Promote?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.gate.result.already_champion", "BooleanEquals": True, "Next": "AlreadyChampion"},
                {"Variable": "$.gate.result.promote", "BooleanEquals": True, "Next": "OffPolicy"},
            ],
            "Default": "Rejected",
        },
        "AlreadyChampion": {
            "Type": "Succeed",
            "Comment": "a re-run of a released snapshot: training found the same model version, nothing to do",
        },
        "Rejected": notify(
            failures,
            "rankops: challenger rejected by the gate",
            {"execution.$": "$.execution", "version.$": "$.gate.result.version", "reasons.$": "$.gate.result.reasons"},
            "NotPromoted",
        ),
        "NotPromoted": {"Type": "Succeed", "Comment": "the gate kept the champion; nothing was registered"},
        **offpolicy.states(r, next_state="Register", rejected="NotPromoted", on_error="NotifyFailure"),
        "Register": t.registry(r, "register", next_state="FirstRelease?", on_error="NotifyFailure"),
        "FirstRelease?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.gate.result.champion_version", "IsNull": True, "Next": "ApproveFirstRelease?"}],
            "Default": "Baseline",
        },
        "Baseline": t.release(r, "baseline", next_state="Shadow", on_error="NotifyFailure", result_path="$.baseline"),
        **t.approval(
            approvals,
            "ApproveFirstRelease",
            "rankops: approve the first release to production",
            next_state="Deploy",
            on_error="NotifyFailure",
        ),
        "Deploy": t.release(r, "deploy", next_state="DeployedWait", on_error="NotifyFailure", result_path="$.release"),
        **t.wait_for_endpoint(r, "Deployed", "PromoteRegistry", "NotifyFailure"),
        "Shadow": t.release(r, "shadow", next_state="ShadowedWait", on_error="Rollback", result_path="$.release"),
        **t.wait_for_endpoint(r, "Shadowed", "ShadowSoak", "Rollback"),
        "ShadowSoak": {"Type": "Wait", "SecondsPath": "$.run.soak_seconds", "Next": "ShadowCheck"},
        "ShadowCheck": t.release(
            r, "check", next_state="ShadowOk?", on_error="Rollback", result_path="$.shadow", extra=t.check("shadow")
        ),
        "ShadowOk?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.shadow.result.ok", "BooleanEquals": True, "Next": "Approval?"}],
            "Default": "ShadowRejected",
        },
        "ShadowRejected": {
            "Type": "Pass",
            "Parameters": {"Error": "ShadowRejected", "Cause.$": "States.JsonToString($.shadow.result)"},
            "ResultPath": "$.failure",
            "Next": "Rollback",
        },
        "Canary": t.canary(r, next_state="Promote", on_error="Rollback"),
        **t.approval(
            approvals,
            "Approval",
            "rankops: approve the release to production (shadow passed; canary next)",
            next_state="Canary",
            on_error="Rollback",
            details={"shadow.$": "$.shadow.result"},
        ),
        "Promote": t.release(r, "promote", next_state="PromotedWait", on_error="Rollback", result_path="$.release"),
        **t.wait_for_endpoint(
            r, "Promoted", "PromoteRegistry", "Rollback", expect_config="$.release.result.endpoint_config"
        ),
        "PromoteRegistry": t.registry(r, "promote", next_state="Released", on_error="Rollback"),
        "Released": notify(
            failures,
            "rankops: new champion released",
            {"execution.$": "$.execution", "version.$": "$.gate.result.version", "metrics.$": "$.gate.result.metrics"},
            "Done",
        ),
        "Done": {"Type": "Succeed"},
        "Rollback": t.release(
            r,
            "rollback",
            next_state="RolledBackWait",
            on_error="RejectRegistry",
            result_path="$.rollback",
            failure_path="$.rollback_failure",  # keep $.failure: it says why we roll back
            extra={"restore.$": "$.baseline.result"},  # what served before Shadow, not the live champion
        ),
        **t.wait_for_endpoint(r, "RolledBack", "RejectRegistry", "RejectRegistry", failure_path="$.rollback_failure"),
        "RejectRegistry": t.registry(r, "reject", next_state="NotifyRollback", on_error="NotifyRollback"),
        "NotifyRollback": notify(
            failures,
            "rankops: release rolled back, the champion keeps serving",
            {"execution.$": "$.execution", "version.$": "$.gate.result.version", "failure.$": "$.failure"},
            "Failed",
        ),
        "NotifyFailure": notify(
            failures,
            "rankops: pipeline failed, the champion keeps serving",
            {"execution.$": "$.execution", "failure.$": "$.failure"},
            "Failed",
        ),
        "Failed": {
            "Type": "Fail",
            "Error": "PipelineFailed",
            "Cause": "see the notification and the execution history",
        },
    }
    return {
        "Comment": f"rankops retraining pipeline ({r['Environment']}): features -> train -> gate -> release",
        "StartAt": "Defaults",
        "TimeoutSeconds": EXECUTION_TIMEOUT_S,
        "States": states,
    }
