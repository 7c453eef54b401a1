"""Deployable unit: the retraining pipeline (state machine, its Lambdas, its triggers, the job role).

The resources handed to the definition (``${Key}`` substitutions, see
:mod:`infra.constructs.pipeline_definition_source`) come from the stacks deployed
before this one; the endpoint and the serving model role are referred to by their
configured names because the serving stack is deployed after this one.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Fn, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import ENDPOINT_ALARMS, EnvConfig
from infra.constructs.feature_compute import FeatureCompute
from infra.constructs.network import Network
from infra.constructs.pipeline import Pipeline
from infra.constructs.pipeline_triggers import PipelineTriggers
from infra.constructs.sagemaker_jobs import SageMakerJobRole
from infra.constructs.serving_endpoint import DATA_CAPTURE_PREFIX
from infra.data_access import DataAccess


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataAccess,
        network: Network,
        repository: ecr.IRepository,
        image_uri: str,
        mlflow_arn: str,
        features: FeatureCompute,
        topics: dict[str, sns.ITopic],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        aws = config.aws
        jobs = SageMakerJobRole(self, "Jobs", config=config, data=data, repository=repository, mlflow_arn=mlflow_arn)
        job_role = jobs.role
        output_key = data.buckets["artifacts"].encryption_key
        if output_key is None:
            raise ValueError("the artifacts bucket has no customer-managed key for the jobs' outputs")
        resources = {
            "Environment": config.name,
            "StateMachineName": config.state_machine_name,
            "ApprovalRequired": "true" if config.settings.pipeline.approval_required else "false",
            "FailuresTopicArn": topics["failures"].topic_arn,
            "ApprovalsTopicArn": topics["approvals"].topic_arn,
            **{f"{zone.capitalize()}Bucket": bucket.bucket_name for zone, bucket in data.buckets.items()},
            "ImageUri": image_uri,
            "SageMakerJobRoleArn": job_role.role_arn,
            "JobVolumeKmsKeyArn": jobs.volume_key.key_arn,
            "JobOutputKmsKeyArn": output_key.key_arn,
            "TrainingInstanceType": aws.training_instance_type,
            "ProcessingInstanceType": aws.processing_instance_type,
            "JobSubnetIds": Fn.join(",", network.subnet_ids),
            "JobSecurityGroupId": network.batch_sg.security_group_id,
            "MlflowTrackingServerArn": mlflow_arn,
            "EmrApplicationId": features.application.attr_application_id,
            "EmrJobRoleArn": features.job_role.role_arn,
            "EndpointName": config.endpoint_name,
            "ServingModelRoleArn": f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{config.serving_model_role_name}",
            "FeatureSet": config.settings.features.feature_set,
            "EmrEntryPoint": features.entry_point,
            "EndpointInstanceType": aws.endpoint.instance_type,
            "RollbackAlarmNames": ",".join(config.alarm_name(a) for a in ENDPOINT_ALARMS),
            "ServingSecurityGroupId": network.serving_sg.security_group_id,
            # the endpoint's data capture (the feedback log in AWS), as the serving stack configures it
            "DataCaptureUri": f"s3://{data.buckets['raw'].bucket_name}/{DATA_CAPTURE_PREFIX}",
        }
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            config=config,
            resources=resources,
            data=data,
            topics=topics,
            job_role_arn=job_role.role_arn,
            emr_application_arn=features.application_arn,
            emr_job_role_arn=features.job_role.role_arn,
        )
        self.triggers = PipelineTriggers(
            self,
            "Triggers",
            config=config,
            state_machine=self.pipeline.state_machine,
            approvals=topics["approvals"],
            failures=topics["failures"],
        )
        CfnOutput(self, "StateMachineArn", value=self.pipeline.state_machine.state_machine_arn)
        CfnOutput(
            self,
            "RetrainTriggerFunction",
            value=self.triggers.function.function.function_name,
            description="aws lambda invoke --function-name <this> (emergency retrain, docs/deploy.md)",
        )
        CfnOutput(self, "SageMakerJobRoleArn", value=job_role.role_arn)
