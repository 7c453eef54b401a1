"""Feature compute: an EMR Serverless Spark application, its job role, and the hourly schedule.

EMR Serverless rather than EMR on EC2: the feature job is a short batch every hour;
Serverless bills only while it runs (auto-start, auto-stop after the idle timeout),
has no cluster to patch or right-size, and caps spend with ``maximumCapacity``. The
application runs the rankops EMR image (``docker/emr.Dockerfile``) in the private
subnets. An EventBridge rule invokes ``lambdas/start_feature_job`` every hour, which
publishes the freshness metric and starts ``emr_jobs/build_features.py`` (uploaded by
the image build to ``artifacts/emr/<tag>/``) unless the previous run is still active.
The job role reads the raw zone's dataset prefixes, reads and writes the curated and
features zones, writes the online stores, and nothing else.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_emrserverless as emr
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import METRICS_NAMESPACE, EnvConfig
from infra.constructs.dead_letters import DeadLetters
from infra.constructs.lambda_function import HandlerFunction
from infra.data_access import DataAccess
from infra.grants import grant_objects_read_write, grant_put_metrics
from infra.nag import (
    KMS_GRANT_ACTIONS,
    NO_RESOURCE_TYPE,
    OWN_LOG_STREAMS,
    S3_GRANT_ACTIONS,
    acknowledge_wildcards,
    lake_objects,
)
from rankops.features.runs import RUN_PREFIX

RAW_PREFIXES = ("events/*", "items/*", "_meta/*")
PYTHON = "/usr/bin/python3.11"  # the interpreter docker/emr.Dockerfile installs rankops into
IMAGE_CONFIG = "/opt/rankops/rankops.toml"  # where docker/emr.Dockerfile puts rankops.toml


class FeatureCompute(Construct):
    """Exposes ``application``, ``application_arn``, ``job_role`` and ``starter`` (the scheduled function)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataAccess,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        repository: ecr.IRepository,
        failures_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        aws = config.aws
        buckets = data.buckets
        log_group = logs.LogGroup(
            self,
            "JobLogs",
            log_group_name=f"/aws/emr-serverless/{config.prefix}",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("emr-serverless.amazonaws.com"),
            description=f"{config.prefix} feature job runtime role (lake prefixes and online stores only)",
        )
        for prefix in RAW_PREFIXES:
            buckets["raw"].grant_read(self.job_role, prefix)
        grant_objects_read_write(buckets["curated"], self.job_role)
        grant_objects_read_write(buckets["features"], self.job_role)
        buckets["artifacts"].grant_read(self.job_role, "emr/*")
        data.grant_store_write(self.job_role)
        log_group.grant_write(self.job_role)
        self.job_role.add_to_policy(
            iam.PolicyStatement(actions=["logs:DescribeLogStreams"], resources=[log_group.log_group_arn])
        )
        self.job_role.add_to_policy(  # DescribeLogGroups is authorized on the account's log-group space
            iam.PolicyStatement(
                actions=["logs:DescribeLogGroups"],
                resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"],
            )
        )
        grant_put_metrics(self.job_role)
        acknowledge_wildcards(
            self.job_role,
            "Object-level wildcards are the lake prefixes the job owns (raw events/ items/ _meta/, all of curated "
            "and features, artifacts emr/) plus CDK grant action groups (s3:GetObject*, kms:GenerateDataKey*); "
            "cloudwatch:PutMetricData has no resource type and is pinned by a namespace condition; "
            "logs:DescribeLogGroups is only authorized on arn:aws:logs:<region>:<account>:* (AWS documentation).",
            S3_GRANT_ACTIONS,
            KMS_GRANT_ACTIONS,
            *(lake_objects("raw", p.removesuffix("*")) for p in RAW_PREFIXES),
            lake_objects("curated"),
            lake_objects("features"),
            lake_objects("artifacts", "emr/"),
            OWN_LOG_STREAMS,
            r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:\*",
            NO_RESOURCE_TYPE,
        )
        environment = {
            "RANKOPS_ENV": config.name,
            "RANKOPS_SPARK__MASTER": "emr-serverless",  # not local[*]: EMR decides the master
            "EMR_RELEASE_LABEL": aws.emr.release_label,
            "PYSPARK_PYTHON": PYTHON,
            "RANKOPS_CONFIG": IMAGE_CONFIG,
            **data.runtime_environment(),
        }
        spark_defaults = {
            **{f"spark.emr-serverless.driverEnv.{k}": v for k, v in environment.items()},
            **{f"spark.executorEnv.{k}": v for k, v in environment.items()},
        }
        self.application = emr.CfnApplication(
            self,
            "Application",
            name=config.name_of("features"),
            release_label=aws.emr.release_label,
            type="Spark",
            architecture=aws.emr.architecture,
            auto_start_configuration=emr.CfnApplication.AutoStartConfigurationProperty(enabled=True),
            auto_stop_configuration=emr.CfnApplication.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=aws.emr.idle_timeout_minutes
            ),
            maximum_capacity=emr.CfnApplication.MaximumAllowedResourcesProperty(
                cpu=aws.emr.max_cpu, memory=aws.emr.max_memory
            ),
            network_configuration=emr.CfnApplication.NetworkConfigurationProperty(
                subnet_ids=subnet_ids,
                security_group_ids=[security_group.security_group_id],
            ),
            image_configuration=emr.CfnApplication.ImageConfigurationInputProperty(
                image_uri=f"{repository.repository_uri}:{config.image_tag}"
            ),
            monitoring_configuration=emr.CfnApplication.MonitoringConfigurationProperty(
                cloud_watch_logging_configuration=emr.CfnApplication.CloudWatchLoggingConfigurationProperty(
                    enabled=True, log_group_name=log_group.log_group_name, log_stream_name_prefix=RUN_PREFIX
                )
            ),
            runtime_configuration=[
                emr.CfnApplication.ConfigurationObjectProperty(
                    classification="spark-defaults", properties=spark_defaults
                )
            ],
        )
        self.application_arn = (
            f"arn:{Aws.PARTITION}:emr-serverless:{Aws.REGION}:{Aws.ACCOUNT_ID}:/applications/"
            f"{self.application.attr_application_id}"
        )
        self.entry_point = f"s3://{buckets['artifacts'].bucket_name}/emr/{config.image_tag}/build_features.py"
        self.starter = self._starter(config)
        self.dead_letters = DeadLetters(self, "DeadLetters", config=config, alert=failures_topic)
        dlq = self.dead_letters.queue
        self.schedule = events.Rule(
            self,
            "Hourly",
            description=f"{config.prefix}: start the feature job ({aws.emr.schedule})",
            schedule=events.Schedule.expression(aws.emr.schedule),
            targets=[
                targets.LambdaFunction(
                    self.starter.function, retry_attempts=2, max_event_age=Duration.hours(1), dead_letter_queue=dlq
                )
            ],
        )
        self.failures = events.Rule(
            self,
            "JobFailed",
            description=f"{config.prefix}: a job run on the feature application failed (feature, stream, monitor)",
            event_pattern=events.EventPattern(
                source=["aws.emr-serverless"],
                detail_type=["EMR Serverless Job Run State Change"],
                detail={"applicationId": [self.application.attr_application_id], "state": ["FAILED"]},
            ),
            targets=[
                targets.SnsTopic(
                    failures_topic,
                    dead_letter_queue=dlq,
                    message=events.RuleTargetInput.from_text(
                        f"{config.prefix} job run {events.EventField.from_path('$.detail.jobRunId')} on the feature "
                        "application (feature, streaming or monitoring job) "
                        f"failed: {events.EventField.from_path('$.detail.stateDetails')}"
                    ),
                )
            ],
        )

    def _starter(self, config: EnvConfig) -> HandlerFunction:
        starter = HandlerFunction(
            self,
            "Starter",
            config=config,
            name="start_feature_job",
            description="Start the hourly EMR Serverless feature job unless one is active; publish freshness",
            environment={
                "APPLICATION_ID": self.application.attr_application_id,
                "JOB_ROLE_ARN": self.job_role.role_arn,
                "ENTRY_POINT": self.entry_point,
                # the last complete hour, then the latest values into the online stores
                "ENTRY_POINT_ARGUMENTS": json.dumps(["--env", config.name, "--hours-back", "1", "--materialize"]),
                "SPARK_SUBMIT_PARAMETERS": config.aws.emr.spark_submit_parameters,
                "EXECUTION_TIMEOUT_MINUTES": "60",
                "METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        self.allow_job_starts(starter.role, "emr-serverless:GetApplication")
        return starter

    def allow_job_starts(self, role: iam.IRole, *extra_actions: str) -> None:
        """What a Lambda that starts this application's job runs may do: start and list runs, pass
        the job role to EMR Serverless only, publish metrics (the hourly starter and the stream keeper)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["emr-serverless:StartJobRun", "emr-serverless:ListJobRuns", *extra_actions],
                resources=[self.application_arn, f"{self.application_arn}/jobruns/*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}},
            )
        )
        grant_put_metrics(role)
        acknowledge_wildcards(
            role,
            "Wildcards: the application's job runs (ids unknown until started), its own log group's streams, "
            "X-Ray and cloudwatch:PutMetricData (no resource types; the latter pinned to the rankops namespace).",
            r"Resource::arn:<AWS::Partition>:emr-serverless:.*:/applications/<FeaturesApplication[^>]*>/jobruns/\*",
            OWN_LOG_STREAMS,
            NO_RESOURCE_TYPE,
        )
