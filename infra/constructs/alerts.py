"""Notification topics: P1 and P2 alarms, pipeline failures, release approvals.

Every topic is KMS-encrypted with one customer-managed key and refuses plain HTTP
publishers (TLS-only topic policy). The key lets CloudWatch alarms and EventBridge
rules publish (their service principals need ``GenerateDataKey*``/``Decrypt``), so
severity routing needs no Lambda in between.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import EnvConfig

TOPICS = {
    "p1": "P1: serving is hurting users now (page)",
    "p2": "P2: degraded data or pipeline (ticket)",
    "failures": "Pipeline failures (Step Functions executions, feature jobs)",
    "approvals": "Release approvals and emergency-retrain notices",
}
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


class Alerts(Construct):
    """Exposes ``topics[name]`` for the names in ``TOPICS`` and the topics' ``key``."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "TopicsKey",
            alias=f"alias/{config.prefix}-alerts",
            enable_key_rotation=True,
            description=f"{config.prefix} notification topics",
            removal_policy=config.removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmAndRulePublishing",
                principals=[iam.ServicePrincipal(s) for s in PUBLISHING_SERVICES],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
            )
        )
        self.topics: dict[str, sns.Topic] = {}
        for name, description in TOPICS.items():
            topic = sns.Topic(
                self,
                f"{name.capitalize()}Topic",
                topic_name=config.name_of(name),
                display_name=f"{config.prefix} {description}"[:100],
                master_key=self.key,
                enforce_ssl=True,
            )
            if config.aws.alarm_email and name in ("p1", "p2", "failures"):
                topic.add_subscription(subscriptions.EmailSubscription(config.aws.alarm_email))
            self.topics[name] = topic
