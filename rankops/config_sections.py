"""The sections of :class:`rankops.config.Settings`, one small model per concern.

Defaults are the ``local`` environment: a laptop with no servers. Cloud
environments override them in ``rankops.toml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rankops.features.online.dynamodb import DynamoDBConfig
from rankops.features.online.embedded import EmbeddedConfig
from rankops.features.online.redis import RedisConfig

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


StoreType = Literal["embedded", "redis", "dynamodb"]  # the keys of features.online.factory.STORE_TYPES


class OnlineStoreConfig(Section):
    """Which backend serves which entity. ``routing`` maps entity name -> store type;
    entities not listed use ``default``. The version pointer is re-read at most every
    ``recheck_seconds`` by readers, so a new materialization is picked up without restarts."""

    default: StoreType = "embedded"
    routing: dict[str, StoreType] = {}
    recheck_seconds: float = Field(1.0, ge=0)
    embedded: EmbeddedConfig = EmbeddedConfig()
    redis: RedisConfig = RedisConfig()
    dynamodb: DynamoDBConfig = DynamoDBConfig()

    @model_validator(mode="before")
    @classmethod
    def _older_spelling(cls, data: Any) -> Any:
        """``embedded_path`` (the first spelling) is ``embedded.path``."""
        if isinstance(data, Mapping) and "embedded_path" in data:
            data = dict(data)
            path = data.pop("embedded_path")
            embedded = data.get("embedded", {})
            if isinstance(embedded, BaseModel):
                embedded = embedded.model_dump()
            data["embedded"] = {**embedded, "path": path}
        return data


class LabelConfig(Section):
    """Multi-objective graded label: the weighted sum of outcomes, rounded half up (any weighted
    engagement grades at least 1) and capped (``rankops.training.labels.objective_label``)."""

    click_weight: float = Field(1.0, ge=0)
    contact_weight: float = Field(1.0, ge=0)
    revenue_weight: float = Field(1.0, ge=0)
    max_label: int = Field(4, ge=1, le=30)


class FallbackConfig(Section):
    """The small robust model the server falls back to: few shallow trees on the features
    the server's item snapshot holds through a store outage (``features`` empty -> every model
    input that is not a windowed aggregate, plus the rule baseline's inputs), trained on the
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
    position_debias: bool = False  # lambdarank with the logged positions (rankops/training/debias.py)
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
    # the feedback-loop guard (rankops/training/loop_guard.py): coverage, long-tail share and new-item
    # share of the top k, compounded over the last `loop_guard_releases` releases (this one included),
    # may not shrink by more than these relative limits
    loop_guard_releases: int = Field(3, ge=1)
    loop_guard_max_coverage_drop: float = Field(0.05, ge=0, lt=1)
    loop_guard_max_long_tail_share_drop: float = Field(0.10, ge=0, lt=1)
    loop_guard_max_new_item_share_drop: float = Field(0.20, ge=0, lt=1)
    # Alias a passing challenger receives: `champion` at once (local runs), or `challenger`
    # for the release pipeline (shadow, canary) to promote later. A failing one gets none.
    on_pass: Literal["champion", "challenger"] = "champion"  # noqa: S105 - an alias name
    # the off-policy gate (pipeline state OffPolicy, docs/ope.md): the challenger's estimated clicks
    # per request over the champion's on the feedback log's randomised answers; the release stops
    # when the lift's lower bound is below -max_drop x the champion's clicks, and is "inconclusive"
    # (handed to shadow and canary) with too few requests or too little support
    offpolicy_max_drop_relative: float = Field(0.05, ge=0, lt=1)
    offpolicy_min_requests: int = Field(500, ge=1)
    offpolicy_positions: int = Field(10, ge=1)  # judge the first positions (where clicks and support are)
    offpolicy_policies: list[Literal["deterministic", "explore", "uniform"]] = ["explore", "uniform"]
    offpolicy_days: int = Field(14, ge=1)  # the log window before the run


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
    # the feedback log (local server, written as SageMaker data capture; in AWS, the endpoint's
    # capture): queued answers beyond feedback_queue are dropped and counted; the lake gets a
    # capture file per cohort and hour every feedback_flush_s
    feedback_log: bool = True
    feedback_queue: int = Field(10_000, ge=1)
    feedback_flush_s: float = Field(30.0, gt=0)
    # a JSON line per model version on stdout (answers, degraded answers) this often; 0: never. In
    # AWS it becomes the Answers/DegradedAnswers metrics (rankops.monitoring.answer_summary)
    answer_log_interval_s: float = Field(60.0, ge=0)
    # items whose fallback-level features the server keeps in memory for store outages
    # (rankops.serving.snapshot; memory per million items in docs/serving.md); 0: none
    snapshot_items: int = Field(1_000_000, ge=0)
    # seed it at start from the offline store's latest values (rankops.serving.snapshot_warm), so a
    # server started during a store outage still ranks; a background thread, never delays start
    snapshot_seed: bool = True


class ExplorationConfig(Section):
    """Randomised answers with logged propensities (docs/ope.md): a sticky ``share`` of users gets a
    Plackett-Luce draw over the routed model's top ``top_k`` at ``temperature``; a sticky
    ``uniform_share`` gets every candidate in uniformly random order (the unbiased reference slice).
    Requests that force a variant are never randomised. Both 0: every answer is deterministic."""

    share: float = Field(0.0, ge=0, le=1)
    uniform_share: float = Field(0.0, ge=0, le=1)
    temperature: float = Field(1.0, gt=0)
    top_k: int = Field(4, ge=1, le=6)  # rankops.ope.exploration.MAX_TOP_K: exact marginals by enumeration
    salt: str = "explore"  # with release.bucket_salt: independent of the canary's buckets

    @model_validator(mode="after")
    def _shares_fit(self) -> ExplorationConfig:
        if self.share + self.uniform_share > 1:
            raise ValueError(f"share + uniform_share must be at most 1, got {self.share} + {self.uniform_share}")
        return self


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
    # the canary judged on what users do (rankops.release.ctr_judge, docs/release.md): "required": no
    # step advances without outcome evidence; "when_logged": judged once outcome events are logged
    canary_outcomes: Literal["required", "when_logged", "off"] = "when_logged"
    canary_ctr_mde: float = Field(0.02, gt=0, lt=1)  # minimum detectable effect on CTR, absolute
    canary_contact_mde: float = Field(0.02, ge=0, lt=1)  # on contact rate; 0: reported by online-metrics only
    canary_alpha: float = Field(0.05, gt=0, lt=1)
    canary_power: float = Field(0.8, gt=0, lt=1)
    canary_ctr_k: int = Field(10, ge=1)  # a click counts when it is on one of the top k positions
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
