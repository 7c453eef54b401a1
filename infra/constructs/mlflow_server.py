"""SageMaker managed MLflow: the tracking server and registry behind ``rankops.registry`` in AWS.

Artifacts go to the lake's artifacts bucket under ``mlflow/`` (KMS-encrypted like the
rest of the lake); the server's role can touch nothing else. Clients point MLflow at
the server's ARN (``RANKOPS_MLFLOW__TRACKING_URI=<arn>``, via the ``sagemaker-mlflow``
plugin) and need ``sagemaker-mlflow:*`` on it; ``grant_access`` gives exactly that.
Automatic registration into the SageMaker Model Registry is off: rankops registers
models in MLflow with aliases (champion/challenger/previous).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import EnvConfig
from infra.data_access import MLFLOW_ARTIFACT_PREFIX
from infra.grants import grant_objects_read_write
from infra.nag import KMS_GRANT_ACTIONS, S3_GRANT_ACTIONS, acknowledge_wildcards, lake_objects

ARTIFACT_PREFIX = MLFLOW_ARTIFACT_PREFIX  # clients get it as RANKOPS_MLFLOW__ARTIFACT_ROOT (DataAccess)


class MlflowServer(Construct):
    """Exposes ``server``, ``arn`` and ``role``."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, artifacts: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        aws = config.aws
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{config.prefix} MLflow tracking server (artifact store access only)",
        )
        grant_objects_read_write(artifacts, self.role, f"{ARTIFACT_PREFIX}/*")
        acknowledge_wildcards(
            self.role,
            "The server reads and writes any object under the artifacts bucket's mlflow/ prefix (run ids are "
            "unknown in advance); action groups (s3:GetObject*, kms:GenerateDataKey*) come from CDK grants.",
            S3_GRANT_ACTIONS,
            KMS_GRANT_ACTIONS,
            lake_objects("artifacts", f"{ARTIFACT_PREFIX}/"),
        )
        self.server = sagemaker.CfnMlflowTrackingServer(
            self,
            "Server",
            tracking_server_name=config.name_of("mlflow"),
            artifact_store_uri=f"s3://{artifacts.bucket_name}/{ARTIFACT_PREFIX}",
            role_arn=self.role.role_arn,
            tracking_server_size=aws.mlflow.server_size,
            mlflow_version=aws.mlflow.mlflow_version,
            automatic_model_registration=False,
            weekly_maintenance_window_start=aws.mlflow.maintenance_window,
        )
        # the registry and its aliases (champion/challenger/previous) live here: keep it where lake data is kept
        self.server.apply_removal_policy(config.removal_policy)
        self.server.node.add_dependency(self.role.node.find_child("DefaultPolicy"))  # S3 access before start
        self.arn = self.server.attr_tracking_server_arn

    def grant_access(self, grantee: iam.IGrantable) -> None:
        """Use the tracking server and its registry (log runs, register models, set aliases)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker-mlflow:*"], resources=[self.arn])
        )
