"""Deployable unit: P1/P2 alarms not owned by the endpoint, and the overview dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.monitoring import Monitoring


class MonitoringStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvConfig, p1: sns.ITopic, p2: sns.ITopic, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.monitoring = Monitoring(self, "Monitoring", config=config, p1=p1, p2=p2)
        CfnOutput(self, "Dashboard", value=self.monitoring.dashboard.dashboard_name)
