"""Deployable unit: the VPC, its endpoints and the security groups (long-lived)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.network import Network


class NetworkStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.network = Network(self, "Network", config=config)
        CfnOutput(self, "VpcId", value=self.network.vpc.vpc_id)
