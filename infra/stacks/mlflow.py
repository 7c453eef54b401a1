"""Deployable unit: the SageMaker managed MLflow tracking server."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.mlflow_server import MlflowServer


class MlflowStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvConfig, artifacts: s3.IBucket, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.mlflow = MlflowServer(self, "Mlflow", config=config, artifacts=artifacts)
        CfnOutput(self, "TrackingServerArn", value=self.mlflow.arn, description="RANKOPS_MLFLOW__TRACKING_URI")
