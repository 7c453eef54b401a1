"""Deployable unit: the SageMaker endpoint, its blue/green policy, rollback alarms and scaling."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.network import Network
from infra.constructs.serving_endpoint import ServingEndpoint
from infra.data_access import DataAccess


class ServingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataAccess,
        lake_key: kms.IKey,
        network: Network,
        repository: ecr.IRepository,
        p1: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.serving = ServingEndpoint(
            self,
            "Serving",
            config=config,
            data=data,
            lake_key=lake_key,
            repository=repository,
            subnet_ids=network.subnet_ids,
            security_group=network.serving_sg,
            p1=p1,
        )
        CfnOutput(self, "EndpointName", value=self.serving.endpoint.attr_endpoint_name)
