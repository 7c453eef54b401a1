"""Deployable unit: the EMR Serverless feature application, its hourly schedule, the streaming
features (Kinesis event stream, the streaming job run kept alive, its alarms), and the hourly
monitoring run on the same application (drift and online metrics of the endpoint's data capture)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import EnvConfig
from infra.constructs.feature_compute import FeatureCompute
from infra.constructs.monitor_schedule import MonitorSchedule
from infra.constructs.network import Network
from infra.constructs.stream_compute import StreamCompute
from infra.data_access import DataAccess


class FeatureComputeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataAccess,
        network: Network,
        repository: ecr.IRepository,
        failures: sns.ITopic,
        alarms: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.compute = FeatureCompute(
            self,
            "Features",
            config=config,
            data=data,
            subnet_ids=network.subnet_ids,
            security_group=network.batch_sg,
            repository=repository,
            failures_topic=failures,
        )
        self.stream = StreamCompute(self, "Stream", config=config, data=data, compute=self.compute, alarm_topic=alarms)
        self.monitor = MonitorSchedule(self, "Monitor", config=config, data=data, compute=self.compute)
        CfnOutput(self, "EventStreamName", value=self.stream.stream.stream_name)
        CfnOutput(self, "EmrApplicationId", value=self.compute.application.attr_application_id)
        CfnOutput(self, "EmrJobRoleArn", value=self.compute.job_role.role_arn)
