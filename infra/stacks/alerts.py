"""Deployable unit: the notification topics every other stack publishes to."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.alerts import Alerts


class AlertsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alerts = Alerts(self, "Alerts", config=config)
        for name, topic in self.alerts.topics.items():
            CfnOutput(self, f"{name.capitalize()}TopicArn", value=topic.topic_arn, description=f"SNS topic '{name}'")
