"""The hourly monitoring run: drift and online metrics of the endpoint's data capture, on EMR Serverless.

An EventBridge schedule a few minutes past every hour (``aws.emr.monitor_schedule``) invokes
``lambdas/start_monitor_job``, which starts ``emr_jobs/monitor.py`` (uploaded with
``build_features.py`` by the image build) on the feature application for the hour that just closed,
once per hour (:mod:`rankops.monitoring.runs`). The run publishes ``FeatureDriftPSI`` and
``RevenueProxy``, the metrics of the P2 drift and P1 revenue alarms (``infra/constructs/monitoring.py``).

It runs as the feature job role, which already reads the features zone and publishes metrics; this
construct adds what the monitoring job alone reads: the endpoint's data capture, outcome events and
the processed datasets' manifests (the drift reference), and the raw zone's ``feedback_quarantine/``
where the capture reader keeps lines it could not parse. A failed run is announced by the
application's job-failure rule, like any run.
"""

from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.config import METRICS_NAMESPACE, EnvConfig
from infra.constructs.feature_compute import FeatureCompute
from infra.constructs.lambda_function import HandlerFunction
from infra.constructs.serving_endpoint import DATA_CAPTURE_PREFIX
from infra.data_access import DataAccess
from infra.grants import grant_objects_read_write
from infra.nag import acknowledge_wildcards, lake_objects
from rankops.feedback.store import OUTCOMES_DATASET, QUARANTINE
from rankops.monitoring.runs import TIMEOUT_MINUTES

ENTRY_POINT = "monitor.py"
DATASETS_PREFIX = "datasets"  # the processing job's manifests (rankops.training.jobs.processing.manifest_uri)


class MonitorSchedule(Construct):
    """Exposes ``starter``, ``schedule`` and ``entry_point``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvConfig, data: DataAccess, compute: FeatureCompute
    ) -> None:
        super().__init__(scope, construct_id)
        raw, artifacts = data.buckets["raw"], data.buckets["artifacts"]
        role = compute.job_role
        for prefix in (DATA_CAPTURE_PREFIX, OUTCOMES_DATASET):
            raw.grant_read(role, f"{prefix}/*")
        grant_objects_read_write(raw, role, f"{QUARANTINE}/*")
        artifacts.grant_read(role, f"{DATASETS_PREFIX}/*")
        acknowledge_wildcards(
            role,
            "The monitoring job reads the endpoint's data capture (raw datacapture/), outcome events (raw "
            "outcomes/) and dataset manifests (artifacts datasets/), and commits unparsable capture lines "
            "to raw feedback_quarantine/.",
            lake_objects("raw", f"{DATA_CAPTURE_PREFIX}/"),
            lake_objects("raw", f"{OUTCOMES_DATASET}/"),
            lake_objects("raw", f"{QUARANTINE}/"),
            lake_objects("artifacts", f"{DATASETS_PREFIX}/"),
        )
        self.entry_point = compute.entry_point.replace("build_features.py", ENTRY_POINT)
        arguments = ["--env", config.name, "--endpoint", config.endpoint_name, "--metrics-namespace", METRICS_NAMESPACE]
        arguments += ["--capture-uri", f"s3://{raw.bucket_name}/{DATA_CAPTURE_PREFIX}"]  # as the serving stack sets it
        self.starter = HandlerFunction(
            self,
            "Starter",
            config=config,
            name="start_monitor_job",
            description="Start the hourly EMR Serverless monitoring run (drift, online metrics) of the last hour",
            environment={
                "APPLICATION_ID": compute.application.attr_application_id,
                "JOB_ROLE_ARN": role.role_arn,
                "ENTRY_POINT": self.entry_point,
                "ENTRY_POINT_ARGUMENTS": json.dumps(arguments),  # the starter adds --hour
                "SPARK_SUBMIT_PARAMETERS": config.aws.emr.spark_submit_parameters,
                "EXECUTION_TIMEOUT_MINUTES": str(TIMEOUT_MINUTES),
                "METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        compute.allow_job_starts(self.starter.role)
        self.schedule = events.Rule(
            self,
            "Hourly",
            description=f"{config.prefix}: judge the last hour's served traffic ({config.aws.emr.monitor_schedule})",
            schedule=events.Schedule.expression(config.aws.emr.monitor_schedule),
            targets=[
                targets.LambdaFunction(
                    self.starter.function,
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                    dead_letter_queue=compute.dead_letters.queue,
                )
            ],
        )
