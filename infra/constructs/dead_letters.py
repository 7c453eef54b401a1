"""A dead-letter queue for EventBridge targets, with an alarm when anything lands in it.

Without one, an event whose delivery fails after the retries (the Lambda throttled or
deleted, the topic's key unusable) is dropped silently: a weekly retrain or an hourly
feature run simply never happens. Undelivered events wait here for 14 days and the
alarm tells the failures topic.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import EnvConfig
from infra.nag import acknowledge


class DeadLetters(Construct):
    """Exposes ``queue`` (pass it as a target's ``dead_letter_queue``) and ``alarm``."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, alert: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=config.removal_policy,
        )
        acknowledge(
            self.queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of EventBridge targets; its depth alarm reports it.",
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "Undelivered",
            alarm_description=f"{config.prefix}: EventBridge could not deliver an event ({construct_id})",
            metric=self.queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(cw_actions.SnsAction(alert))
