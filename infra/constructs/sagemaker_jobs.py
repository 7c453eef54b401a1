"""The role SageMaker processing and training jobs run as, when the pipeline starts them.

Jobs run the rankops image (pulled from ECR), read the lake (raw read-only), write
curated data, features and model artifacts, log to MLflow and CloudWatch, and may
run inside the VPC (the ``batch`` security group) to reach the online stores.

On the artifacts bucket: ``pipeline/`` (every job's inputs and outputs, one folder per
execution, as the state machine names them), ``mlflow/`` (MLflow's artifact store: clients
upload run artifacts and logged models there themselves), ``models/`` and ``jobs/``.
"""

from __future__ import annotations

from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import EnvConfig
from infra.data_access import MLFLOW_ARTIFACT_PREFIX, DataAccess
from infra.grants import grant_objects_read_write, grant_put_metrics, grant_sagemaker_logs, grant_vpc_access
from infra.nag import KMS_GRANT_ACTIONS, NO_RESOURCE_TYPE, S3_GRANT_ACTIONS, acknowledge_wildcards, lake_objects

# Prefixes of the artifacts bucket jobs read and write (besides MLflow's store).
ARTIFACT_PREFIXES = ("pipeline/", "models/", "jobs/")


class SageMakerJobRole(Construct):
    """Exposes ``role`` and ``volume_key`` (the jobs' ML storage volumes, ``VolumeKmsKeyId``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataAccess,
        repository: ecr.IRepository,
        mlflow_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{config.prefix} SageMaker processing and training jobs",
        )
        self.volume_key = kms.Key(
            self,
            "VolumeKey",
            alias=f"alias/{config.prefix}-job-volumes",
            enable_key_rotation=True,
            description=f"{config.prefix} SageMaker processing and training job storage volumes",
            removal_policy=config.removal_policy,
        )
        # SageMaker encrypts a job's volume as the job's role; it attaches the key through a grant
        self.volume_key.grant_encrypt_decrypt(self.role)
        self.volume_key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey")
        data.buckets["raw"].grant_read(self.role)
        grant_objects_read_write(data.buckets["curated"], self.role)
        grant_objects_read_write(data.buckets["features"], self.role)
        for prefix in ARTIFACT_PREFIXES:
            grant_objects_read_write(data.buckets["artifacts"], self.role, f"{prefix}*")
        data.grant_mlflow_artifacts(self.role)
        data.grant_store_write(self.role)
        repository.grant_pull(self.role)
        self.role.add_to_policy(iam.PolicyStatement(actions=["sagemaker-mlflow:*"], resources=[mlflow_arn]))
        grant_sagemaker_logs(self.role, "ProcessingJobs")
        grant_sagemaker_logs(self.role, "TrainingJobs")
        grant_put_metrics(self.role)
        grant_vpc_access(self.role)
        acknowledge_wildcards(
            self.role,
            "Wildcards: lake objects (run ids unknown in advance; artifacts limited to models/, jobs/, the "
            "pipeline's per-execution pipeline/ folders and MLflow's mlflow/ artifact store), "
            "SageMaker's own /aws/sagemaker/*Jobs log groups, sagemaker-mlflow:* on the one tracking server, "
            "ECR's GetAuthorizationToken, SageMaker's documented VPC ENI actions and namespaced PutMetricData.",
            S3_GRANT_ACTIONS,
            KMS_GRANT_ACTIONS,
            lake_objects("raw"),
            lake_objects("curated"),
            lake_objects("features"),
            *(lake_objects("artifacts", prefix) for prefix in ARTIFACT_PREFIXES),
            lake_objects("artifacts", f"{MLFLOW_ARTIFACT_PREFIX}/"),
            r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/"
            r"(ProcessingJobs|TrainingJobs)\*",
            r"Action::sagemaker-mlflow:\*",
            NO_RESOURCE_TYPE,
        )
