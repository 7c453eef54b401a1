"""Streaming features in AWS: the event stream, the streaming job run kept alive, its alarms.

- A Kinesis data stream (on-demand capacity: ~17k events/s of ~200 bytes is ~3.5 MB/s, which
  on-demand absorbs without shard planning), KMS-encrypted with the AWS-managed ``aws/kinesis`` key.
  Producers (the marketplace's click/contact tracking) send one JSON event per record
  (``rankops.features.stream_sources.put_events``; docs/streaming.md).
- The streaming job (``emr_jobs/stream_features.py --source kinesis://<stream> --for inf``) runs
  as an EMR Serverless ``STREAMING`` job run on the feature application (EMR 7.1+ ships the
  Kinesis connector), checkpointing in the raw zone's ``stream/`` prefix. EMR restarts a failed
  run from its checkpoint (retry policy ``maxFailedAttemptsPerHour``); the keeper Lambda
  (``lambdas/keep_stream_job``, logic in ``rankops.features.stream_runs``) starts a new run every
  5 minutes and on every job-run state change if none is active, e.g. after EMR gave up.
  ``CfnApplication`` has no job-run resource, hence the keeper.
- Alarms (P2): freshness (``StreamFreshnessSeconds``, published by the job; silence breaches) and
  the stream's ``GetRecords.IteratorAgeMilliseconds`` (the job falling behind the stream).
"""

from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import METRICS_NAMESPACE, EnvConfig
from infra.constructs.feature_compute import FeatureCompute
from infra.constructs.lambda_function import HandlerFunction
from infra.data_access import DataAccess
from infra.grants import grant_objects_read_write
from infra.nag import acknowledge_wildcards, lake_objects
from rankops.features import registry
from rankops.features.stream_runs import FRESHNESS_METRIC, KINESIS_SCHEME, RUN_NAME

CHECKPOINT_PREFIX = "stream/*"  # the job's folder in the raw zone: checkpoints, accepted/late/quarantine
KEEPER_SCHEDULE = "rate(5 minutes)"
MAX_FAILED_ATTEMPTS_PER_HOUR = 5
# the freshness metric is an upper bound (one slide above the true lag): alarm past SLA + slide
FRESHNESS_THRESHOLD_S = (registry.STREAM_SLA + registry.STREAM_SLIDE).total_seconds()
ITERATOR_AGE_THRESHOLD_MS = registry.STREAM_SLA.total_seconds() * 1000
ALARM_MINUTES = 5


class StreamCompute(Construct):
    """Exposes ``stream``, ``keeper``, ``freshness_alarm`` and ``iterator_age_alarm``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataAccess,
        compute: FeatureCompute,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stream = kinesis.Stream(
            self,
            "Events",
            stream_name=config.name_of("events"),
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            # KMS with the AWS-managed key (aws/kinesis): a customer key would add per-consumer KMS
            # cost and nothing the lake's key policy needs here (cdk-nag AwsSolutions-KDS3)
            encryption=kinesis.StreamEncryption.MANAGED,
            retention_period=Duration.hours(24),
            removal_policy=config.removal_policy,
        )
        job_role = compute.job_role
        self.stream.grant_read(job_role)
        grant_objects_read_write(data.buckets["raw"], job_role, CHECKPOINT_PREFIX)
        acknowledge_wildcards(
            job_role,
            "The streaming job owns the raw zone's stream/ prefix (checkpoints, accepted, late, quarantined).",
            lake_objects("raw", "stream/"),
        )
        self.keeper = self._keeper(config, compute)
        for rule_id, description, schedule, pattern in (
            ("KeepStreaming", "keep the streaming feature run alive", KEEPER_SCHEDULE, None),
            (
                "StreamRunChanged",
                "a job run changed state: restart the streaming run if it ended",
                None,
                events.EventPattern(
                    source=["aws.emr-serverless"],
                    detail_type=["EMR Serverless Job Run State Change"],
                    detail={
                        "applicationId": [compute.application.attr_application_id],
                        "state": ["FAILED", "CANCELLED", "SUCCESS"],
                    },
                ),
            ),
        ):
            events.Rule(
                self,
                rule_id,
                description=f"{config.prefix}: {description}",
                schedule=events.Schedule.expression(schedule) if schedule else None,
                event_pattern=pattern,
                targets=[
                    targets.LambdaFunction(
                        self.keeper.function,
                        retry_attempts=2,
                        max_event_age=Duration.minutes(10),
                        dead_letter_queue=compute.dead_letters.queue,
                    )
                ],
            )
        action = cw_actions.SnsAction(alarm_topic)
        self.freshness_alarm = cw.Alarm(
            self,
            "Freshness",
            alarm_name=config.name_of("stream-freshness"),
            alarm_description=(
                f"P2: streaming features older than {FRESHNESS_THRESHOLD_S:.0f} s (SLA + one slide) for "
                f"{ALARM_MINUTES} min, or the job stopped publishing. Runbook: docs/streaming.md#aws"
            ),
            metric=cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=FRESHNESS_METRIC,
                dimensions_map={"Environment": config.name},
                statistic="Maximum",
                period=Duration.minutes(1),
            ),
            threshold=FRESHNESS_THRESHOLD_S,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=ALARM_MINUTES,
            treat_missing_data=cw.TreatMissingData.BREACHING,  # a dead job publishes nothing
        )
        self.iterator_age_alarm = cw.Alarm(
            self,
            "IteratorAge",
            alarm_name=config.name_of("stream-iterator-age"),
            alarm_description=(
                f"P2: the streaming job reads the event stream more than {ITERATOR_AGE_THRESHOLD_MS / 1000:.0f} s "
                f"behind for {ALARM_MINUTES} min. Runbook: docs/streaming.md#aws"
            ),
            metric=self.stream.metric_get_records_iterator_age_milliseconds(
                statistic="Maximum", period=Duration.minutes(1)
            ),
            threshold=ITERATOR_AGE_THRESHOLD_MS,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=ALARM_MINUTES,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # no reads: the freshness alarm speaks
        )
        for alarm in (self.freshness_alarm, self.iterator_age_alarm):
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _keeper(self, config: EnvConfig, compute: FeatureCompute) -> HandlerFunction:
        entry = compute.entry_point.replace("build_features.py", "stream_features.py")
        arguments = ["--env", config.name, "--source", f"{KINESIS_SCHEME}{self.stream.stream_name}"]
        arguments += ["--for", "inf", "--metrics-namespace", METRICS_NAMESPACE]
        keeper = HandlerFunction(
            self,
            "Keeper",
            config=config,
            name="keep_stream_job",
            description=f"Keep the EMR Serverless streaming run {RUN_NAME} alive; publish whether it is",
            environment={
                "APPLICATION_ID": compute.application.attr_application_id,
                "JOB_ROLE_ARN": compute.job_role.role_arn,
                "ENTRY_POINT": entry,
                "ENTRY_POINT_ARGUMENTS": json.dumps(arguments),
                "SPARK_SUBMIT_PARAMETERS": config.aws.emr.spark_submit_parameters,
                "MAX_FAILED_ATTEMPTS_PER_HOUR": str(MAX_FAILED_ATTEMPTS_PER_HOUR),
                "METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        compute.allow_job_starts(keeper.role)
        return keeper
