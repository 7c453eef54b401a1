"""The CDK side of configuration: which environment to synthesize, and its settings.

The environment comes from ``-c env=dev|staging|prod`` (cdk.json's default is
``dev``); its values come from the same ``rankops.toml`` the platform reads, so
infra and runtime can never disagree about, say, the region. Names that several
stacks must agree on (the endpoint, the state machine, alarm names) are derived
here once, so stacks can refer to each other by name instead of by export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from rankops import __version__
from rankops.config import Settings, load_settings
from rankops.config_aws import AwsConfig
from rankops.errors import ConfigError
from rankops.release.sagemaker import CHAMPION_VARIANT

CLOUD_ENVIRONMENTS = ("dev", "staging", "prod")
REPO_ROOT = Path(__file__).resolve().parent.parent
METRICS_NAMESPACE = "rankops"  # custom metrics, dimension Environment=<env> (docs/deploy.md: metric contract)
# The production variant every release keeps (blue/green swaps its model); the canary adds "challenger".
SERVING_VARIANT = CHAMPION_VARIANT

# Alarm keys (names are ``<prefix>-<key>``): P1 pages, P2 is a ticket. Rules and the
# endpoint's rollback configuration refer to alarms by these names.
ALARM_5XX = "p1-endpoint-5xx"
ALARM_LATENCY = "p1-endpoint-latency-p99"
ALARM_MODEL_ERRORS = "p1-endpoint-model-errors"
ALARM_DEGRADED = "p1-endpoint-degraded-answers"
# the endpoint's P1 alarms: they page, and they roll a blue/green deployment back
ENDPOINT_ALARMS = (ALARM_5XX, ALARM_LATENCY, ALARM_MODEL_ERRORS, ALARM_DEGRADED)
ALARM_REVENUE = "p1-revenue-proxy-drop"
ALARM_DRIFT = "p2-feature-drift"
ALARM_FRESHNESS = "p2-feature-freshness"
ALARM_PIPELINE = "p2-pipeline-failed"

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


@dataclass(frozen=True)
class EnvConfig:
    """One environment as the stacks see it."""

    name: str
    settings: Settings

    @property
    def aws(self) -> AwsConfig:
        return self.settings.aws

    @property
    def prefix(self) -> str:
        return f"{self.settings.project}-{self.name}"

    @property
    def tags(self) -> dict[str, str]:
        aws = self.settings.aws
        return {"project": self.settings.project, "env": self.name, "owner": aws.owner, "cost-centre": aws.cost_centre}

    def name_of(self, suffix: str) -> str:
        """A physical name shared by the stacks of this environment (``rankops-dev-<suffix>``)."""
        return f"{self.prefix}-{suffix}"

    @property
    def retain(self) -> bool:
        return self.aws.removal_policy == "retain"

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.retain else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION[self.aws.log_retention_days]

    @property
    def image_tag(self) -> str:
        """The rankops image every job and the endpoint run (ECR tags are immutable)."""
        return self.aws.image_tag or __version__

    @property
    def bootstrap_image_tag(self) -> str:
        """The image of the serving stack's own model (``aws.endpoint.bootstrap_image_tag``), never
        ``image_tag``: new code reaches the endpoint through the pipeline's releases only."""
        tag = self.aws.endpoint.bootstrap_image_tag
        if not tag:
            raise ConfigError(
                f"aws.endpoint.bootstrap_image_tag is not set for env {self.name!r}: pin the image tag of the "
                "endpoint's first model (docs/deploy.md); it must not follow aws.image_tag"
            )
        return tag

    @property
    def endpoint_name(self) -> str:
        return self.name_of("ranker")

    @property
    def endpoint_volume_key_alias(self) -> str:
        """The endpoint's storage-volume key; the release Lambda's KMS grants are scoped by this alias
        (the key lives in the serving stack, which is deployed after the pipeline)."""
        return f"alias/{self.prefix}-endpoint"

    def deployment_policy(self) -> dict[str, object]:
        """The blue/green policy of ``aws.endpoint`` as :class:`rankops.release.sagemaker.DeploymentPolicy`
        fields: the release Lambda deploys with the same policy as the CloudFormation endpoint."""
        cfg = self.aws.endpoint
        return {
            "traffic_routing": cfg.traffic_routing,
            "canary_size_percent": cfg.canary_percent,
            "linear_step_percent": cfg.linear_step_percent,
            "wait_interval_s": cfg.wait_interval_seconds,
            "termination_wait_s": cfg.termination_wait_seconds,
            "max_execution_timeout_s": cfg.max_execution_timeout_seconds,
        }

    def check_thresholds(self) -> dict[str, object]:
        """``release.*`` as :class:`rankops.release.checks.PostTrafficEvent` fields: the release Lambda's
        shadow and canary checks judge the challenger variant by them."""
        cfg = self.settings.release
        return {
            "max_error_rate": cfg.max_error_rate,
            "max_latency_p95_ms": cfg.max_latency_p95_ms,
            "min_invocations": cfg.canary_min_requests,
            "max_degraded_rate": cfg.max_fallback_rate,
            # the shadow's score comparison from data capture (rankops.release.shadow_capture)
            "shadow_min_requests": cfg.shadow_min_requests,
            "min_rank_correlation": cfg.min_rank_correlation,
            "max_kl_divergence": cfg.max_kl_divergence,
            "shadow_bins": cfg.shadow_bins,
            # the canary judged on CTR and contact rate (rankops.release.capture_outcomes)
            "canary_outcomes": cfg.canary_outcomes,
            "canary_ctr_mde": cfg.canary_ctr_mde,
            "canary_contact_mde": cfg.canary_contact_mde,
            "canary_alpha": cfg.canary_alpha,
            "canary_power": cfg.canary_power,
            "canary_ctr_k": cfg.canary_ctr_k,
        }

    @property
    def state_machine_name(self) -> str:
        return self.name_of("pipeline")

    @property
    def serving_model_role_name(self) -> str:
        """Fixed so the pipeline (deployed first) may pass it when it creates new models."""
        return self.name_of("serving-model")

    @property
    def latency_p99_ms(self) -> int:
        return self.aws.alarms.latency_p99_ms or self.settings.serving.latency_budget_ms

    @property
    def freshness_hours(self) -> int:
        """The P2 freshness alarm: configured, else the tightest freshness SLA of the batch features."""
        from rankops.features import registry

        tightest = min(f.freshness_sla for f in registry.FEATURES if f.kind not in ("on_demand", "stream"))
        return self.aws.alarms.feature_freshness_hours or max(1, math.ceil(tightest.total_seconds() / 3600))

    def alarm_name(self, key: str) -> str:
        """Alarm names are fixed strings so rules and rollback configs can match them without exports."""
        return self.name_of(key)


def env_config(name: str | None) -> EnvConfig:
    if name not in CLOUD_ENVIRONMENTS:
        raise ConfigError(f"cdk context env={name!r} is not deployable; use one of {', '.join(CLOUD_ENVIRONMENTS)}")
    return EnvConfig(name, load_settings(env=name, environ={}, config_file=REPO_ROOT / "rankops.toml"))
