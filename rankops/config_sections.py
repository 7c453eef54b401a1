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
    """How features are computed, validated and published; the features themselves
    are declared in :mod:`rankops.features.registry`."""

    feature_set: str = "marketplace"
    position_bias_eta: float = Field(0.4, ge=0)  # examination ~ position ** -eta, for debiasing CTR
    ctr_prior_strength: float = Field(20.0, gt=0)  # pseudo-impressions of the CTR smoothing prior
    contact_prior_strength: float = Field(10.0, gt=0)  # pseudo-clicks of the contact-rate prior
    max_null_rate: float = Field(0.01, ge=0, le=1)
    max_default_rate: dict[str, float] = {}  # feature -> highest share of default values before validation fails
    max_row_count_change: float = Field(0.5, ge=0)  # relative change vs the previous comparable run
    materialize_batch_rows: int = Field(20_000, gt=0)


class RedisConfig(Section):
    """ElastiCache / Redis. Timeouts are short on purpose: the server falls back
    rather than wait (a store error surfaces as ``StoreError``)."""

    url: str = "redis://127.0.0.1:6379/0"
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
    host: str = "127.0.0.1"
    port: int = Field(8080, gt=0, lt=65536)
    max_candidates: int = Field(500, gt=0)
    max_body_bytes: int = Field(1_000_000, gt=0)
    store_timeout_ms: int = Field(30, gt=0)
    latency_budget_ms: int = Field(150, gt=0)


class ReleaseConfig(Section):
    canary_steps: list[float] = [0.1, 0.5, 1.0]
    max_kl_divergence: float = Field(0.5, ge=0)
    min_rank_correlation: float = Field(0.3, ge=-1, le=1)

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
