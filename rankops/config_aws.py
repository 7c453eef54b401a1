"""The ``aws`` section of :class:`rankops.config.Settings`: what the CDK app deploys per
environment (network, Redis, EMR, MLflow, endpoint, alarms). Read by ``infra/config.py``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rankops.config_sections import Section

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)  # fmt: skip


class AwsNetworkConfig(Section):
    """The VPC: private subnets only, no NAT; AWS services are reached through VPC endpoints."""

    cidr: str = "10.40.0.0/16"
    # Interface endpoints (service names as in ec2.InterfaceVpcEndpointAwsService); S3 and
    # DynamoDB always get (free) gateway endpoints.
    interface_endpoints: list[str] = [  # noqa: RUF012 - a pydantic field (Section is a BaseModel)
        "SAGEMAKER_API",
        "SAGEMAKER_RUNTIME",
        "CLOUDWATCH_LOGS",
        "CLOUDWATCH_MONITORING",
        "ECR",
        "ECR_DOCKER",
        "STS",
        "KMS",
        "SECRETS_MANAGER",  # the Redis AUTH token
        "SAGEMAKER_EXPERIMENTS",  # managed MLflow, for jobs running in the VPC
    ]


class AwsRedisConfig(Section):
    """ElastiCache for Redis OSS (a replication group): TLS, AUTH, KMS at rest."""

    node_type: str = "cache.t4g.small"
    engine_version: str = "7.1"
    port: int = Field(6380, gt=1024, lt=65536)  # not the default 6379 (cdk-nag AEC5)
    replicas: int = Field(0, ge=0, le=5)  # >= 1 with aws.multi_az for automatic failover
    snapshot_retention_days: int = Field(0, ge=0, le=35)


class AwsEmrConfig(Section):
    """EMR Serverless for the hourly feature job (docs/deploy.md)."""

    release_label: str = "emr-spark-8.0.0"  # Spark 4.0, matching PySpark 4 in constraints.txt
    architecture: Literal["X86_64", "ARM64"] = "X86_64"
    max_cpu: str = "16 vCPU"
    max_memory: str = "64 GB"
    idle_timeout_minutes: int = Field(15, ge=1, le=10080)
    schedule: str = "rate(1 hour)"  # EventBridge schedule expression of the feature job
    # the hourly monitoring run (drift, online metrics): minutes past the hour, so its capture is complete
    monitor_schedule: str = "cron(5 * * * ? *)"
    spark_submit_parameters: str = (
        "--conf spark.executor.cores=2 --conf spark.executor.memory=4g --conf spark.driver.cores=1 "
        "--conf spark.driver.memory=4g --conf spark.dynamicAllocation.maxExecutors=6"
    )


class AwsMlflowConfig(Section):
    """SageMaker managed MLflow tracking server."""

    server_size: Literal["Small", "Medium", "Large"] = "Small"
    mlflow_version: str = "3.0"
    maintenance_window: str = "Sun:03:00"


class AwsEndpointConfig(Section):
    """The SageMaker real-time endpoint, its autoscaling and its blue/green deployment policy."""

    instance_type: str = "ml.c6i.large"
    # Changing instance_type with auto scaling on fails (SageMaker); deploy with autoscaling=false
    # first, then change the type, then turn it back on (docs/deploy.md).
    autoscaling: bool = True
    min_instances: int = Field(1, ge=1)
    max_instances: int = Field(2, ge=1)
    invocations_per_instance: int = Field(600, gt=0)  # target of SageMakerVariantInvocationsPerInstance (per min)
    scale_in_cooldown_seconds: int = Field(300, ge=0)
    scale_out_cooldown_seconds: int = Field(60, ge=0)
    data_capture_percent: int = Field(20, ge=0, le=100)
    # Model data of the *first* deployment (s3://.../model.tar.gz); None -> the artifacts bucket's
    # models/bootstrap/model.tar.gz. Later releases are made by the pipeline. The object must exist
    # before the serving stack is deployed (docs/deploy.md: bootstrap order).
    initial_model_data_url: str | None = None
    # Image tag of the serving stack's own (bootstrap) model. Fixed on purpose, apart from aws.image_tag:
    # bumping aws.image_tag must only reach the pipeline's jobs and models, never the endpoint config
    # CloudFormation owns (a change here puts the bootstrap model back in production; docs/deploy.md).
    bootstrap_image_tag: str | None = None
    traffic_routing: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"] = "ALL_AT_ONCE"
    canary_percent: int = Field(10, gt=0, le=50)  # SageMaker: <= 50% of the fleet
    linear_step_percent: int = Field(25, ge=10, le=50)  # SageMaker: 10-50% per step
    wait_interval_seconds: int = Field(300, ge=0, le=3600)  # bake time between traffic steps
    termination_wait_seconds: int = Field(300, ge=0, le=3600)  # keep the old fleet this long after 100%
    max_execution_timeout_seconds: int = Field(3600, ge=600, le=28800)

    @model_validator(mode="after")
    def _bounds(self) -> AwsEndpointConfig:
        if self.max_instances < self.min_instances:
            raise ValueError(f"max_instances ({self.max_instances}) is below min_instances ({self.min_instances})")
        if self.initial_model_data_url is not None and not self.initial_model_data_url.startswith("s3://"):
            raise ValueError(f"initial_model_data_url must be an s3:// URL, got {self.initial_model_data_url!r}")
        if self.traffic_routing != "ALL_AT_ONCE" and self.min_instances < 2:
            # SageMaker sizes a canary or linear step as a share of the fleet (canary <= 50%, steps 10-50%);
            # one instance has no such share. Rejected rather than silently switched, so the policy in
            # rankops.toml is the one that runs.
            raise ValueError(
                f"traffic_routing {self.traffic_routing} needs min_instances >= 2 (got {self.min_instances}); "
                "use ALL_AT_ONCE for a single-instance endpoint"
            )
        return self


class AwsAlarmConfig(Section):
    """Alarm thresholds. P1 pages (serving is hurting users now); P2 is a ticket."""

    error_5xx_percent: float = Field(1.0, gt=0, le=100)  # P1: 5xx share of invocations
    model_error_percent: float = Field(2.0, gt=0, le=100)  # P1 (rollback): InvocationModelErrors share
    degraded_percent: float = Field(5.0, gt=0, le=100)  # P1 (rollback): answers from a lower fallback level
    latency_p99_ms: int | None = Field(None, gt=0)  # P1: ModelLatency p99; None -> serving.latency_budget_ms
    revenue_drop_band: float = Field(3.0, gt=0)  # P1: std-devs below the anomaly band of revenue proxy
    feature_drift_psi: float = Field(0.2, gt=0)  # P2 and retrain trigger: max PSI over model features
    feature_freshness_hours: int | None = Field(None, gt=0)  # P2; None -> the registry's tightest SLA
    period_seconds: int = Field(60, ge=10)
    evaluation_periods: int = Field(5, ge=1)
    datapoints_to_alarm: int = Field(3, ge=1)


class AwsConfig(Section):
    """Everything the CDK app needs per environment; sizes and policies, not code."""

    account: str | None = None  # None -> the CLI's current account at deploy time
    region: str = "eu-west-1"
    availability_zones: list[str] | None = None  # None -> <region>a, b, c (first max_azs)
    owner: str = "ml-platform"
    cost_centre: str = "ranking"
    max_azs: int = Field(2, ge=1, le=3)
    multi_az: bool = False
    log_retention_days: int = 30
    removal_policy: Literal["destroy", "retain"] = "destroy"
    raw_expiry_days: int = Field(365, gt=0)
    training_instance_type: str = "ml.m5.xlarge"
    processing_instance_type: str = "ml.m5.xlarge"
    alarm_email: str | None = None  # subscribed to the P1 and P2 topics when set
    image_tag: str | None = None  # tag of the rankops image in ECR; None -> the package version
    codebuild_compute: Literal["SMALL", "MEDIUM", "LARGE"] = "MEDIUM"  # image build host size
    lambda_runtime: Literal["python3.11", "python3.12"] = "python3.12"
    # The AWS-managed "AWS SDK for pandas" layer (numpy for handlers); the ARN is per region
    # and Python version: https://aws-sdk-pandas.readthedocs.io/en/stable/layers.html
    lambda_numpy_layer_arn: str = "arn:aws:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python312:20"
    pipeline_lambdas: list[str] = []  # noqa: RUF012 - a pydantic field; extra lambdas/<name>/handler.py the state machine invokes
    retrain_schedule: str = "cron(0 3 ? * MON *)"  # weekly retraining (EventBridge, UTC)
    retrain_cooldown_hours: float = Field(24, gt=0)  # a persisting drift starts one retrain per cooldown
    network: AwsNetworkConfig = AwsNetworkConfig()
    redis: AwsRedisConfig = AwsRedisConfig()
    emr: AwsEmrConfig = AwsEmrConfig()
    mlflow: AwsMlflowConfig = AwsMlflowConfig()
    endpoint: AwsEndpointConfig = AwsEndpointConfig()
    alarms: AwsAlarmConfig = AwsAlarmConfig()

    @model_validator(mode="after")
    def _consistent(self) -> AwsConfig:
        layer_region = self.lambda_numpy_layer_arn.split(":")[3:4]
        if layer_region != [self.region]:
            raise ValueError(
                f"lambda_numpy_layer_arn is for region {layer_region[0] if layer_region else '?'!r}, "
                f"not {self.region!r}; pick the ARN for this region from the AWS SDK for pandas layer list"
            )
        layer_name = "AWSSDKPandas-" + self.lambda_runtime.replace("python", "Python").replace(".", "")
        if f":layer:{layer_name}:" not in self.lambda_numpy_layer_arn:
            raise ValueError(
                f"lambda_numpy_layer_arn must be a {layer_name} layer version to match lambda_runtime "
                f"{self.lambda_runtime!r} (the layer is built per Python version)"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"log_retention_days must be one of CloudWatch's periods {LOG_RETENTION_DAYS}")
        if self.multi_az and self.redis.replicas < 1:
            raise ValueError("multi_az needs redis.replicas >= 1 (a replica in another AZ to fail over to)")
        if self.availability_zones is not None and len(self.availability_zones) < self.max_azs:
            raise ValueError(f"availability_zones lists fewer than max_azs ({self.max_azs}) zones")
        return self

    def zones(self) -> list[str]:
        """The availability zones the VPC spans."""
        zones = self.availability_zones or [f"{self.region}{suffix}" for suffix in "abc"]
        return zones[: self.max_azs]
