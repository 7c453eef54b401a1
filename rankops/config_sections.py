"""The sections of :class:`rankops.config.Settings`, one small model per concern.

Defaults are the ``local`` environment: a laptop with no servers. Cloud
environments override them in ``rankops.toml``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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

    events: int = Field(300_000, gt=0)
    days: int = Field(5, gt=0, le=366)
    seed: int = 7
    start: str = "2026-11-01"  # first day of events (UTC); fixed so a seed is reproducible


class SparkConfig(Section):
    master: str = "local[*]"
    shuffle_partitions: int = Field(8, gt=0)
    driver_memory: str = "4g"
    conf: dict[str, str] = {}


class FeaturesConfig(Section):
    """How features are computed; the features themselves are declared in
    :mod:`rankops.features.registry`."""

    feature_set: str = "marketplace"
    position_bias_eta: float = Field(0.4, ge=0)  # examination ~ position ** -eta, for debiasing CTR
    ctr_prior_strength: float = Field(20.0, gt=0)  # pseudo-impressions of the smoothing prior
    max_null_rate: float = Field(0.01, ge=0, le=1)
    max_row_count_change: float = Field(0.5, ge=0)  # relative change vs previous run before validation fails
    freshness_sla_hours: int = Field(3, gt=0)


class RedisConfig(Section):
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "rankops"
    ttl_seconds: int = Field(7 * 24 * 3600, gt=0)
    socket_timeout_ms: int = Field(50, gt=0)


class DynamoDBConfig(Section):
    table: str = "rankops-entity-stats"
    region: str | None = None
    endpoint_url: str | None = None


class OnlineStoreConfig(Section):
    """Which backend serves which entity. ``routing`` maps entity name -> store type;
    entities not listed use ``default``."""

    default: Literal["embedded", "redis", "dynamodb"] = "embedded"
    routing: dict[str, Literal["embedded", "redis", "dynamodb"]] = {}
    redis: RedisConfig = RedisConfig()
    dynamodb: DynamoDBConfig = DynamoDBConfig()


class LabelConfig(Section):
    """Multi-objective graded label: the weighted sum of outcomes, rounded and capped."""

    click_weight: float = Field(1.0, ge=0)
    contact_weight: float = Field(1.0, ge=0)
    revenue_weight: float = Field(1.0, ge=0)
    max_label: int = Field(4, ge=1, le=30)


class TrainingConfig(Section):
    seed: int = 42
    holdout_fraction: float = Field(0.15, gt=0, lt=1)
    num_boost_round: int = Field(300, gt=0)
    early_stopping_rounds: int = Field(30, gt=0)
    params: dict[str, float | int | str | bool | list[int]] = {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambdarank_truncation_level": 20,
    }


class EvaluationConfig(Section):
    ndcg_k: int = Field(10, gt=0)
    map_k: int = Field(20, gt=0)
    long_tail_share: float = Field(0.8, gt=0, lt=1)  # items outside the head making up this share of clicks


class GateConfig(Section):
    max_ndcg_drop_relative: float = Field(0.005, ge=0)
    max_coverage_drop: float = Field(0.02, ge=0)
    ndcg_floor: float = Field(0.30, ge=0, le=1)


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
    max_latency_ratio: float = Field(1.5, gt=0)  # challenger p95 / champion p95
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


class AwsConfig(Section):
    """Everything the CDK app needs per environment; sizes and policies, not code."""

    account: str | None = None  # None -> the CLI's current account at deploy time
    region: str = "eu-west-1"
    owner: str = "ml-platform"
    cost_centre: str = "ranking"
    max_azs: int = Field(2, ge=1, le=3)
    multi_az: bool = False
    log_retention_days: int = 30
    removal_policy: Literal["destroy", "retain"] = "destroy"
    raw_expiry_days: int = Field(365, gt=0)
    training_instance_type: str = "ml.m5.xlarge"
    processing_instance_type: str = "ml.m5.xlarge"
    endpoint_instance_type: str = "ml.c6i.large"
    endpoint_instance_count: int = Field(1, ge=1)
    redis_node_type: str = "cache.t4g.small"
    alarm_email: str | None = None
