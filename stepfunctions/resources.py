"""The names the pipeline definition takes its resources by: ``render(resources)`` reads
``resources[key]`` for every key here (CDK passes ``${key}`` placeholders, the local runner local
values), and the Lambda functions its tasks invoke (``LambdaArn_<name>``)."""

from __future__ import annotations

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
    "LambdaArn_check_features",
    "LambdaArn_gate",
    "LambdaArn_release",
)
LAMBDAS: tuple[str, ...] = ("check_features", "gate", "release")
