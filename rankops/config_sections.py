"""The sections of :class:`rankops.config.Settings`, one small model per concern.

Defaults are the ``local`` environment: a laptop with no servers. Cloud
environments override them in ``rankops.toml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# LightGBM's documented names (canonical first, then its aliases) for the three settings
# TrainingConfig owns as fields and passes to LightGBM explicitly.
SEED_ALIASES = ("seed", "random_seed", "random_state")
EARLY_STOPPING_ALIASES = ("early_stopping_round", "early_stopping_rounds", "early_stopping", "n_iter_no_change")
NUM_ROUNDS_ALIASES = (
    "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round", "num_rounds", "nrounds",
    "num_boost_round", "n_estimators", "max_iter",
)  # fmt: skip
OWNED_ALIASES: dict[str, tuple[str, ...]] = {
    "seed": SEED_ALIASES,
    "early_stopping_rounds": EARLY_STOPPING_ALIASES,
    "num_boost_round": NUM_ROUNDS_ALIASES,
}


def owned_settings(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Split LightGBM parameters (or training hyperparameters) into the settings rankops owns,
    keyed by field, the name each was given under, and everything else.

    Any of LightGBM's names counts; two names for one setting must agree (ValueError otherwise).
    """
    own: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for field, names in OWNED_ALIASES.items():
        given = [(n, values[n]) for n in names if n in values]
        if len({str(v) for _, v in given}) > 1:
            listed = " and ".join(f"{n}={v!r}" for n, v in given)
            raise ValueError(f"{listed} are LightGBM names for the same setting ({field}); give one")
        if given:
            given_as[field], own[field] = given[0]
    owned = {n for names in OWNED_ALIASES.values() for n in names}
    return own, given_as, {k: v for k, v in values.items() if k not in owned}


class Section(BaseModel):
    """Frozen and strict: unknown keys are errors, values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeConfig(Section):
    """Where the lake's zones live. ``root`` is a folder or ``s3://bucket/prefix``;
    a zone can also point at its own bucket (as the CDK data-lake stack creates)."""

    root: str | None = None  # None -> <home>/lake
    raw: str | None = None
    curated: str | None = None
    features: str | None = None
    artifacts: str | None = None


class SyntheticConfig(Section):
    """Defaults of ``rankops generate`` and the demo."""

    events: int = Field(300_000, ge=30)  # one search shows up to 30 items
    days: int = Field(5, gt=0, le=366)
    seed: int = Field(7, ge=0)  # NumPy seeds are non-negative
    start: str = "2026-11-01"  # first day of events (UTC); fixed so a seed is reproducible

    @field_validator("start")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected a date like 2026-11-01, got {value!r}") from None
        return value


class SparkConfig(Section):
    master: str = "local[*]"
    shuffle_partitions: int = Field(8, gt=0)
    driver_memory: str = "4g"
    conf: dict[str, str] = {}


class FeaturesConfig(Section):
    """How features are computed, validated and published; the features themselves
    are declared in :mod:`rankops.features.registry`."""

    feature_set: str = "marketplace"
    position_bias_eta: float = Field(0.4, ge=0)  # examination ~ position ** -eta, for debiasing CTR
    ctr_prior_strength: float = Field(20.0, gt=0)  # pseudo-impressions of the CTR smoothing prior
    contact_prior_strength: float = Field(10.0, gt=0)  # pseudo-clicks of the contact-rate prior
    max_null_rate: float = Field(0.01, ge=0, le=1)  # share of published values that are null (or an unexpected NaN)
    # Share of rows whose feature had no value, so its default was filled in (a listing without an
    # image score, a category without prices): every feature, unless named in max_default_rate.
    max_default_rate_default: float = Field(0.5, ge=0, le=1)
    max_default_rate: dict[str, float] = {}  # feature -> its own limit (e.g. 1.0 for a column your logs lack)
    max_row_count_change: float = Field(0.5, ge=0)  # relative change vs the previous comparable run
    materialize_batch_rows: int = Field(20_000, gt=0)

    @model_validator(mode="after")
    def _known_features(self) -> FeaturesConfig:
        from rankops.features import registry

        stored = {f.name for e in registry.stored_entities() for f in registry.stored_features(e)}
        unknown = sorted(set(self.max_default_rate) - stored)
        if unknown:
            raise ValueError(f"max_default_rate names {unknown}, not stored features ({', '.join(sorted(stored))})")
        bad = {n: r for n, r in self.max_default_rate.items() if not 0 <= r <= 1}
        if bad:
            raise ValueError(f"max_default_rate limits must be within [0, 1], got {bad}")
        return self


class RedisConfig(Section):
    """ElastiCache / Redis. Timeouts are short on purpose: the server falls back
    rather than wait (a store error surfaces as ``StoreError``)."""

    url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS (ElastiCache in transit encryption)
    auth_secret_arn: str | None = None  # Secrets Manager secret holding the AUTH token (ElastiCache)
    key_prefix: str = "rankops"
    ttl_seconds: int = Field(7 * 24 * 3600, gt=0)
    socket_timeout_ms: int = Field(50, gt=0)
    connect_timeout_ms: int = Field(200, gt=0)
    write_timeout_ms: int = Field(5_000, gt=0)  # materialization pipelines are large
    pipeline_rows: int = Field(5_000, gt=0)


class DynamoDBConfig(Section):
    table: str = "rankops-entity-stats"
    region: str | None = None
    endpoint_url: str | None = None
    connect_timeout_ms: int = Field(200, gt=0)
    read_timeout_ms: int = Field(300, gt=0)
    max_attempts: int = Field(3, ge=1)  # botocore retries, and rounds of unprocessed-item retries
    ttl_seconds: int = Field(30 * 24 * 3600, gt=0)
    write_threads: int = Field(4, ge=1)


class OnlineStoreConfig(Section):
    """Which backend serves which entity. ``routing`` maps entity name -> store type;
    entities not listed use ``default``. The version pointer is re-read at most every
    ``recheck_seconds`` by readers, so a new materialization is picked up without restarts."""

    default: Literal["embedded", "redis", "dynamodb"] = "embedded"
    routing: dict[str, Literal["embedded", "redis", "dynamodb"]] = {}
    recheck_seconds: float = Field(1.0, ge=0)
    embedded_path: str | None = None  # None -> <home>/online/features.sqlite
    redis: RedisConfig = RedisConfig()
    dynamodb: DynamoDBConfig = DynamoDBConfig()


class LabelConfig(Section):
    """Multi-objective graded label: the weighted sum of outcomes, rounded half up (any weighted
    engagement grades at least 1) and capped (``rankops.training.labels.objective_label``)."""

    click_weight: float = Field(1.0, ge=0)
    contact_weight: float = Field(1.0, ge=0)
    revenue_weight: float = Field(1.0, ge=0)
    max_label: int = Field(4, ge=1, le=30)


class FallbackConfig(Section):
    """The small robust model the server falls back to: few shallow trees on the features
    that are always available (``features`` empty -> every model input that is not a
    windowed aggregate, so it never depends on fresh streaming counters), trained on the
    newest requests only (a shallow model does not need every row; its cost stays bounded)."""

    features: list[str] = []
    num_boost_round: int = Field(20, gt=0)
    max_train_rows: int = Field(250_000, gt=0)  # trained on the newest requests up to this many rows
    params: dict[str, float | int | str | bool | list[int]] = {
        "learning_rate": 0.2,
        "num_leaves": 7,
        "max_depth": 3,
        "min_data_in_leaf": 100,
    }

    @field_validator("params")
    @classmethod
    def _no_owned_settings(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The fallback's seed is training.seed, its size num_boost_round, and it never early-stops:
        a LightGBM name for any of those here would be silently outranked, so it is an error."""
        own, given_as, _ = owned_settings(params)
        if own:
            names = ", ".join(sorted(given_as.values()))
            raise ValueError(
                f"{names}: not a fallback parameter (its seed is training.seed, its size "
                "training.fallback.num_boost_round, and it never early-stops)"
            )
        return params


class TrainingConfig(Section):
    seed: int = 42
    holdout_fraction: float = Field(0.15, gt=0, lt=1)  # newest requests: evaluation and the gate
    valid_fraction: float = Field(0.15, gt=0, lt=1)  # newest of the rest: early stopping
    num_boost_round: int = Field(300, gt=0)
    early_stopping_rounds: int = Field(30, ge=0)  # 0: no early stopping (LightGBM's meaning of 0)
    params: dict[str, float | int | str | bool | list[int]] = {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambdarank_truncation_level": 20,
    }
    fallback: FallbackConfig = FallbackConfig()
    keep_local_runs: int = Field(5, ge=1)  # job folders kept under <home>/sagemaker by local runs

    @model_validator(mode="before")
    @classmethod
    def _lightgbm_names(cls, data: Any) -> Any:
        """A LightGBM name for the seed, early stopping or the number of rounds in ``params``
        (``random_seed``, ``n_iter_no_change``, ``num_iterations``...) sets the field: rankops
        passes the fields to LightGBM explicitly, which would otherwise outrank the alias."""
        if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
            return data
        own, given_as, rest = owned_settings(data["params"])
        for field, value in own.items():
            if field in data and str(data[field]) != str(value):
                raise ValueError(f"params.{given_as[field]}={value!r} contradicts {field}={data[field]!r}; set one")
        return {**data, **own, "params": rest}


class EvaluationConfig(Section):
    ndcg_k: int = Field(10, gt=0)
    map_k: int = Field(20, gt=0)
    long_tail_share: float = Field(0.8, gt=0, lt=1)  # items outside the head making up this share of clicks
    new_item_days: float = Field(7.0, gt=0)  # an item younger than this at request time is "new" (a segment)
    min_segment_requests: int = Field(20, gt=0)  # smaller segments are reported as too small, not scored


class GateConfig(Section):
    """Promotion rules for a challenger scored on the same holdout as the champion."""

    max_ndcg_drop_relative: float = Field(0.005, ge=0, lt=1)  # challenger >= champion * (1 - this)
    max_coverage_drop_relative: float = Field(0.02, ge=0, lt=1)  # challenger >= champion * (1 - this)
    ndcg_floor: float = Field(0.30, ge=0, le=1)  # absolute; the only rule when there is no champion
    # Alias a passing challenger receives: `champion` at once (local runs), or `challenger`
    # for the release pipeline (shadow, canary) to promote later. A failing one gets none.
    on_pass: Literal["champion", "challenger"] = "champion"  # noqa: S105 - an alias name


class MlflowConfig(Section):
    tracking_uri: str | None = None  # None -> sqlite under <home>/mlflow
    artifact_root: str | None = None
    experiment: str = "rankops"
    model_name: str = "rankops-ranker"
    archive_after_days: int = Field(14, gt=0)


class ServingConfig(Section):
    """The inference server: limits, latency budget, degradation and release pick-up."""

    host: str = "127.0.0.1"
    port: int = Field(8080, gt=0, lt=65536)
    workers: int = Field(1, ge=1, le=64)  # uvicorn worker processes; >1 switches metrics to multiprocess mode
    max_candidates: int = Field(500, gt=0)
    max_body_bytes: int = Field(1_000_000, gt=0)
    store_timeout_ms: int = Field(30, gt=0)  # a store read slower than this counts as a failure for the breaker
    latency_budget_ms: int = Field(150, gt=0)
    predict_threads: int = Field(1, ge=1, le=64)  # LightGBM threads per prediction (1: best per-core throughput)
    breaker_failures: int = Field(5, ge=1)  # consecutive store failures (or slow reads) that open the circuit
    breaker_reset_ms: int = Field(1000, gt=0)  # an open circuit skips the store this long, then tries one read
    score_sample: int = Field(8, ge=0, le=1000)  # scores per request recorded in the score histogram
    release_recheck_ms: int = Field(500, gt=0)  # how often the server looks for a new release state
    shadow_queue: int = Field(1000, ge=1)  # pending shadow scorings; beyond this they are dropped and counted
    # the feedback log (local server; in AWS, SageMaker data capture): queued answers beyond
    # feedback_queue are dropped and counted; the lake gets a commit every feedback_flush_s
    feedback_log: bool = True
    feedback_queue: int = Field(10_000, ge=1)
    feedback_flush_s: float = Field(30.0, gt=0)
    # a JSON line per model version on stdout (answers, degraded answers) this often; 0: never. In
    # AWS it becomes the Answers/DegradedAnswers metrics (rankops.monitoring.answer_summary)
    answer_log_interval_s: float = Field(60.0, ge=0)


class ReleaseConfig(Section):
    """Local release decisions (shadow, sticky canary, blue/green) and the SageMaker deployment policy."""

    canary_steps: list[float] = [0.1, 0.5, 1.0]
    bucket_salt: str = "rankops"  # with the challenger version, seeds the sticky user buckets
    max_kl_divergence: float = Field(0.5, ge=0)
    min_rank_correlation: float = Field(0.3, ge=-1, le=1)
    shadow_min_requests: int = Field(100, ge=1)
    shadow_bins: int = Field(20, ge=2, le=1000)
    canary_min_requests: int = Field(200, ge=1)  # per variant, before a canary step may advance
    max_fallback_rate: float = Field(0.01, ge=0, le=1)  # share of the challenger's answers given by a lower level
    max_latency_ratio: float = Field(1.5, gt=0)  # challenger p95 / champion p95 ...
    min_latency_increase_ms: float = Field(10.0, ge=0)  # ... and at least this much slower to count
    # AWS: the endpoint's blue/green deployment (rankops.release.sagemaker)
    traffic_routing: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"] = "CANARY"
    canary_size_percent: int = Field(10, ge=1, le=99)
    linear_step_percent: int = Field(20, ge=1, le=99)
    wait_interval_s: int = Field(300, ge=0, le=3600)
    termination_wait_s: int = Field(600, ge=0, le=3600)
    max_execution_timeout_s: int = Field(3600, ge=600, le=28800)
    shadow_sampling_percent: int = Field(100, ge=1, le=100)  # share of requests copied to a shadow variant
    max_error_rate: float = Field(0.001, ge=0, le=1)  # post-traffic: 5xx / invocations
    max_latency_p95_ms: float = Field(100.0, gt=0)  # post-traffic and pre-traffic latency ceiling

    @model_validator(mode="after")
    def _steps_increase(self) -> ReleaseConfig:
        steps = self.canary_steps
        if not steps or any(not 0 < s <= 1 for s in steps) or steps != sorted(steps) or steps[-1] != 1.0:
            raise ValueError(f"canary_steps must rise within (0, 1] and end at 1.0, got {steps}")
        return self


class PipelineConfig(Section):
    approval_required: bool = False
    local_wait_seconds: int = Field(0, ge=0)  # Wait states are shortened to this when run locally


# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)  # fmt: skip


class AwsNetworkConfig(Section):
    """The VPC: private subnets only, no NAT; AWS services are reached through VPC endpoints."""

    cidr: str = "10.40.0.0/16"
    # Interface endpoints (service names as in ec2.InterfaceVpcEndpointAwsService); S3 and
    # DynamoDB always get (free) gateway endpoints.
    interface_endpoints: list[str] = [
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
    """EMR Serverless for the hourly feature job (see README, "Deploy to AWS")."""

    release_label: str = "emr-spark-8.0.0"  # Spark 4.0, matching PySpark 4 in constraints.txt
    architecture: Literal["X86_64", "ARM64"] = "X86_64"
    max_cpu: str = "16 vCPU"
    max_memory: str = "64 GB"
    idle_timeout_minutes: int = Field(15, ge=1, le=10080)
    schedule: str = "rate(1 hour)"  # EventBridge schedule expression of the feature job
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
    # first, then change the type, then turn it back on (README).
    autoscaling: bool = True
    min_instances: int = Field(1, ge=1)
    max_instances: int = Field(2, ge=1)
    invocations_per_instance: int = Field(600, gt=0)  # target of SageMakerVariantInvocationsPerInstance (per min)
    scale_in_cooldown_seconds: int = Field(300, ge=0)
    scale_out_cooldown_seconds: int = Field(60, ge=0)
    data_capture_percent: int = Field(20, ge=0, le=100)
    # Model data of the *first* deployment (s3://.../model.tar.gz); None -> the artifacts bucket's
    # models/bootstrap/model.tar.gz. Later releases are made by the pipeline. The object must exist
    # before the serving stack is deployed (README: bootstrap order).
    initial_model_data_url: str | None = None
    # Image tag of the serving stack's own (bootstrap) model. Fixed on purpose, apart from aws.image_tag:
    # bumping aws.image_tag must only reach the pipeline's jobs and models, never the endpoint config
    # CloudFormation owns (a change here puts the bootstrap model back in production; README).
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
    pipeline_lambdas: list[str] = []  # extra lambdas/<name>/handler.py the state machine invokes
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
