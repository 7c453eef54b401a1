"""The same release decisions, as SageMaker endpoint requests.

* **shadow**: an endpoint config with the champion as the production variant
  and the challenger as a ``ShadowProductionVariants`` entry (SageMaker copies a
  sampled share of requests to it; responses are discarded, data capture keeps
  both for :mod:`rankops.release.stats`).
* **canary**: two production variants; the weights set the share of requests.
  SageMaker splits per request, so for *sticky* users the caller names the variant
  with ``TargetVariant`` chosen by :func:`rankops.release.bucketing.target_variant`
  (the same hash the local server uses). Ramps go through
  ``UpdateEndpointWeightsAndCapacities``.
* **blue/green**: ``UpdateEndpoint`` with a ``DeploymentConfig``: SageMaker
  provisions the new fleet beside the old one, shifts traffic all at once, in a
  canary step or linearly, waits, and rolls back by itself when any CloudWatch
  alarm of ``AutoRollbackConfiguration`` fires; the old fleet is kept for
  ``TerminationWaitInSeconds`` for an instant rollback.

Pure request builders (standard library only, Lambda-safe); tests validate each
request against botocore's SageMaker service model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CHAMPION_VARIANT, CHALLENGER_VARIANT = "champion", "challenger"


@dataclass(frozen=True)
class VariantSpec:
    model_name: str  # a SageMaker Model (image + model data)
    instance_type: str
    instance_count: int = 1


@dataclass(frozen=True)
class DeploymentPolicy:
    """The blue/green policy of an ``UpdateEndpoint``. In AWS the release Lambda gets its
    environment's (``aws.endpoint``, the CloudFormation endpoint's) as JSON in ``DEPLOYMENT_POLICY``;
    :func:`policy_from_settings` builds one from ``release.*``."""

    traffic_routing: str = "CANARY"  # ALL_AT_ONCE | CANARY | LINEAR
    canary_size_percent: int = 10
    linear_step_percent: int = 20
    wait_interval_s: int = 300
    termination_wait_s: int = 600
    max_execution_timeout_s: int = 3600


def policy_from_settings(release: Any) -> DeploymentPolicy:
    return DeploymentPolicy(
        release.traffic_routing,
        release.canary_size_percent,
        release.linear_step_percent,
        release.wait_interval_s,
        release.termination_wait_s,
        release.max_execution_timeout_s,
    )


def _variant(name: str, spec: VariantSpec, weight: float) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": spec.model_name,
        "InitialInstanceCount": spec.instance_count,
        "InstanceType": spec.instance_type,
        "InitialVariantWeight": float(weight),
    }


def endpoint_config_request(
    name: str,
    champion: VariantSpec,
    challenger: VariantSpec | None = None,
    mode: str = "off",
    canary_share: float = 0.0,
    shadow_sampling_percent: int = 100,
    data_capture_uri: str | None = None,
    kms_key_id: str | None = None,
) -> dict[str, Any]:
    """``CreateEndpointConfig`` for one release state (``off``, ``shadow`` or ``canary``)."""
    if mode not in ("off", "shadow", "canary"):
        raise ValueError(f"unknown release mode {mode!r}")
    if mode != "off" and challenger is None:
        raise ValueError(f"mode {mode!r} needs a challenger variant")
    request: dict[str, Any] = {"EndpointConfigName": name}
    if mode == "canary" and challenger is not None:
        if not 0.0 < canary_share <= 1.0:
            raise ValueError(f"canary share must be in (0, 1], got {canary_share}")
        request["ProductionVariants"] = [
            _variant(CHAMPION_VARIANT, champion, 1.0 - canary_share),
            _variant(CHALLENGER_VARIANT, challenger, canary_share),
        ]
    else:
        request["ProductionVariants"] = [_variant(CHAMPION_VARIANT, champion, 1.0)]
    if mode == "shadow" and challenger is not None:
        # Shadow weight is relative to the production variant's: 1.0 copies every request.
        request["ShadowProductionVariants"] = [
            _variant(CHALLENGER_VARIANT, challenger, shadow_sampling_percent / 100.0)
        ]
    if data_capture_uri:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": data_capture_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        }
    if kms_key_id:
        request["KmsKeyId"] = kms_key_id
    return request


def promotion_config_request(
    name: str,
    model: VariantSpec,
    live_variant_names: Sequence[str],
    data_capture_uri: str | None = None,
    kms_key_id: str | None = None,
) -> dict[str, Any]:
    """``CreateEndpointConfig`` for a promotion: ``model`` behind *every* live variant name, all
    traffic on ``champion``. SageMaker's deployment guardrails (traffic shifting, baking, alarm
    auto-rollback) apply only when the new config keeps the live variant names; after a canary the
    live names are ``champion`` and ``challenger``, so ``challenger`` stays, at weight 0, until the
    next release's shadow config drops it."""
    request = endpoint_config_request(name, model, data_capture_uri=data_capture_uri, kms_key_id=kms_key_id)
    request["ProductionVariants"] = [
        _variant(variant, model, 1.0 if variant == CHAMPION_VARIANT else 0.0) for variant in live_variant_names
    ]
    if CHAMPION_VARIANT not in live_variant_names:
        raise ValueError(f"the live endpoint has no {CHAMPION_VARIANT!r} variant: {list(live_variant_names)}")
    return request


def traffic_routing(policy: DeploymentPolicy) -> dict[str, Any]:
    routing: dict[str, Any] = {"Type": policy.traffic_routing, "WaitIntervalInSeconds": policy.wait_interval_s}
    if policy.traffic_routing == "CANARY":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": policy.canary_size_percent}
    elif policy.traffic_routing == "LINEAR":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": policy.linear_step_percent}
    elif policy.traffic_routing != "ALL_AT_ONCE":
        raise ValueError(f"unknown traffic routing {policy.traffic_routing!r}; expected ALL_AT_ONCE, CANARY or LINEAR")
    return routing


# Every UpdateEndpoint keeps the instance counts the variants run at (auto scaling's choice; a new
# config's InitialInstanceCount would drop a scaled-out fleet to it) and takes the weights from the
# new config (they are what a release state means). A variant new to the endpoint (a canary's
# challenger) has nothing to retain and starts at its config's count.
RETAIN_INSTANCE_COUNTS: dict[str, Any] = {
    "RetainAllVariantProperties": True,
    "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}],
}


def switch_config_request(endpoint_name: str, endpoint_config_name: str) -> dict[str, Any]:
    """``UpdateEndpoint`` to another config (shadow, canary, rollback), instance counts retained."""
    return {"EndpointName": endpoint_name, "EndpointConfigName": endpoint_config_name, **RETAIN_INSTANCE_COUNTS}


def update_endpoint_request(
    endpoint_name: str, endpoint_config_name: str, policy: DeploymentPolicy, alarm_names: Sequence[str]
) -> dict[str, Any]:
    """``UpdateEndpoint``: blue/green to ``endpoint_config_name``, rolled back by any of ``alarm_names``;
    the new fleet starts at the instance count the live variant runs at."""
    if not alarm_names:
        raise ValueError("a blue/green update needs at least one CloudWatch alarm for automatic rollback")
    return {
        **switch_config_request(endpoint_name, endpoint_config_name),
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": traffic_routing(policy),
                "TerminationWaitInSeconds": policy.termination_wait_s,
                "MaximumExecutionTimeoutInSeconds": policy.max_execution_timeout_s,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarm_names]},
        },
    }


def canary_weights_request(endpoint_name: str, share: float) -> dict[str, Any]:
    """``UpdateEndpointWeightsAndCapacities``: one ramp step of a canary (no redeployment)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"canary share must be in [0, 1], got {share}")
    return {
        "EndpointName": endpoint_name,
        "DesiredWeightsAndCapacities": [
            {"VariantName": CHAMPION_VARIANT, "DesiredWeight": float(1.0 - share)},
            {"VariantName": CHALLENGER_VARIANT, "DesiredWeight": float(share)},
        ],
    }


def deploy_blue_green(
    client: Any, endpoint_name: str, endpoint_config_name: str, policy: DeploymentPolicy, alarm_names: Sequence[str]
) -> str:
    """Start the blue/green update; returns the endpoint ARN (SageMaker does the rest)."""
    answer = client.update_endpoint(**update_endpoint_request(endpoint_name, endpoint_config_name, policy, alarm_names))
    return str(answer["EndpointArn"])
