"""The data a workload reads and writes, handed from the stacks that own it to those that use it.

One object instead of six keyword arguments: the lake's buckets, the online stores,
and the ``RANKOPS_*`` environment that points a rankops process at them (the same
variables README's "Deploy to AWS" lists from the stacks' outputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Aws
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager

from infra.grants import grant_objects_read_write

# The setting naming the AUTH token's secret (an ARN, not a secret): online_store.redis.auth_secret_arn.
REDIS_SECRET_VARIABLE = "RANKOPS_ONLINE_STORE__REDIS__AUTH_SECRET_ARN"  # noqa: S105
# MLflow's artifact store: this prefix of the artifacts bucket (the managed tracking server's
# ArtifactStoreUri, and mlflow.artifact_root of every client, which uploads to S3 itself).
MLFLOW_ARTIFACT_PREFIX = "mlflow"
MLFLOW_ARTIFACT_ROOT_VARIABLE = "RANKOPS_MLFLOW__ARTIFACT_ROOT"


@dataclass(frozen=True)
class DataAccess:
    buckets: Mapping[str, s3.IBucket]
    table: dynamodb.ITable
    redis_url: str
    redis_secret: secretsmanager.ISecret

    def grant_store_read(self, grantee: iam.IGrantable) -> None:
        self.table.grant_read_data(grantee)
        self._grant_redis_token(grantee)

    def grant_store_write(self, grantee: iam.IGrantable) -> None:
        self.table.grant_read_write_data(grantee)
        self._grant_redis_token(grantee)

    @property
    def mlflow_artifact_root(self) -> str:
        return f"s3://{self.buckets['artifacts'].bucket_name}/{MLFLOW_ARTIFACT_PREFIX}"

    def grant_mlflow_artifacts(self, grantee: iam.IGrantable) -> None:
        """Log and load run artifacts and models: MLflow clients read and write the artifact store
        directly (the tracking server only hands out locations)."""
        grant_objects_read_write(self.buckets["artifacts"], grantee, f"{MLFLOW_ARTIFACT_PREFIX}/*")

    def _grant_redis_token(self, grantee: iam.IGrantable) -> None:
        """Read the AUTH token. Written out rather than ``secret.grant_read``: that grant edits the
        key policy in the stores stack, which would then depend on every stack that reads it."""
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self.redis_secret.secret_arn],
            )
        )
        if self.redis_secret.encryption_key is not None:
            principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[self.redis_secret.encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
                )
            )

    def runtime_environment(self) -> dict[str, str]:
        """``RANKOPS_*`` variables for a rankops process in AWS (lake zones, online stores, MLflow's
        artifact store)."""
        env = {f"RANKOPS_LAKE__{zone.upper()}": f"s3://{b.bucket_name}" for zone, b in self.buckets.items()}
        env[MLFLOW_ARTIFACT_ROOT_VARIABLE] = self.mlflow_artifact_root
        env["RANKOPS_ONLINE_STORE__DYNAMODB__TABLE"] = self.table.table_name
        env["RANKOPS_ONLINE_STORE__REDIS__URL"] = self.redis_url
        env[REDIS_SECRET_VARIABLE] = self.redis_secret.secret_arn
        return env
