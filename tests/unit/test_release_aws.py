"""SageMaker release requests (validated against botocore's service model, sent through
botocore's Stubber) and the release checks."""

from __future__ import annotations

import json

import boto3
import botocore.session
import pytest
from botocore.stub import ANY, Stubber
from botocore.validate import ParamValidator

from rankops.config_sections import ReleaseConfig
from rankops.errors import ReleaseError
from rankops.release import checks, endpoint
from rankops.release import sagemaker as sm
from rankops.release.sagemaker_endpoint import SageMakerEndpoint

MODEL = botocore.session.get_session().get_service_model("sagemaker")
CHAMPION = sm.VariantSpec("rankops-ranker-1", "ml.c6i.large", 2)
CHALLENGER = sm.VariantSpec("rankops-ranker-2", "ml.c6i.large", 1)


def valid(operation: str, request: dict) -> None:  # type: ignore[type-arg]
    report = ParamValidator().validate(request, MODEL.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("routing", ["ALL_AT_ONCE", "CANARY", "LINEAR"])
def test_blue_green_update_requests_are_valid(routing: str) -> None:
    policy = sm.policy_from_settings(ReleaseConfig(traffic_routing=routing))
    request = sm.update_endpoint_request("rankops-prod", "rankops-prod-cfg-7", policy, ["p95-latency", "5xx-rate"])
    valid("UpdateEndpoint", request)
    bg = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert bg["TrafficRoutingConfiguration"]["Type"] == routing
    assert ("CanarySize" in bg["TrafficRoutingConfiguration"]) == (routing == "CANARY")
    assert ("LinearStepSize" in bg["TrafficRoutingConfiguration"]) == (routing == "LINEAR")
    alarms = request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert alarms == [{"AlarmName": "p95-latency"}, {"AlarmName": "5xx-rate"}]
    with pytest.raises(ValueError, match="at least one CloudWatch alarm"):
        sm.update_endpoint_request("e", "c", policy, [])


def test_every_update_keeps_the_instance_counts_auto_scaling_chose() -> None:
    """RetainAllVariantProperties keeps each variant's running count (a promote must not shrink a
    scaled-out fleet to the config's InitialInstanceCount); DesiredWeight is excluded so the new
    config's weights (the release state) apply."""
    retained = {
        "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}],
    }
    blue_green = sm.update_endpoint_request("rankops-prod", "cfg-8", sm.DeploymentPolicy(), ["alarm"])
    switch = sm.switch_config_request("rankops-prod", "cfg-9")
    for request in (blue_green, switch):
        valid("UpdateEndpoint", request)
        assert {k: request[k] for k in retained} == retained
    assert switch == {"EndpointName": "rankops-prod", "EndpointConfigName": "cfg-9", **retained}
    assert "DeploymentConfig" not in switch


def test_the_release_policy_comes_from_the_event_else_the_lambdas_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(endpoint.DEPLOYMENT_POLICY_VARIABLE, raising=False)
    assert endpoint.deployment_policy({}) == {}  # DeploymentPolicy's defaults
    linear = {"traffic_routing": "LINEAR", "linear_step_percent": 25, "wait_interval_s": 60}
    monkeypatch.setenv(endpoint.DEPLOYMENT_POLICY_VARIABLE, json.dumps(linear))
    assert endpoint.deployment_policy({}) == linear
    assert endpoint.deployment_policy({"policy": {"traffic_routing": "ALL_AT_ONCE"}}) == {
        "traffic_routing": "ALL_AT_ONCE"
    }
    monkeypatch.setenv(endpoint.DEPLOYMENT_POLICY_VARIABLE, "CANARY")
    with pytest.raises(ReleaseError, match="DEPLOYMENT_POLICY is not a JSON object"):
        endpoint.deployment_policy({})


def test_promote_deploys_with_the_environments_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The state machine's release events carry no policy: the Lambda's DEPLOYMENT_POLICY (set by
    infra from aws.endpoint) decides the routing, not DeploymentPolicy's CANARY default."""
    policy = {"traffic_routing": "LINEAR", "linear_step_percent": 25, "wait_interval_s": 60,
              "termination_wait_s": 120, "max_execution_timeout_s": 1800, "canary_size_percent": 10}  # fmt: skip
    monkeypatch.setenv(endpoint.DEPLOYMENT_POLICY_VARIABLE, json.dumps(policy))
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    live = {
        "EndpointConfigName": "live",
        "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:123:endpoint-config/live",
        "CreationTime": "2026-11-01T00:00:00Z",
        "ProductionVariants": [
            {"VariantName": "champion", "ModelName": "m6", "InstanceType": "ml.c6i.large", "InitialInstanceCount": 2}
        ],
    }
    event = {"endpoint": "rankops-staging-ranker", "version": "7", "model_data_url": "s3://a/model.tar.gz",
             "image": "img:1", "model_role": "arn:aws:iam::123:role/r", "instance_type": "ml.c6i.large",
             "alarms": "p1-5xx", "execution": "e1"}  # fmt: skip
    with Stubber(client) as stub:
        stub.add_response(
            "describe_endpoint",
            {"EndpointName": "rankops-staging-ranker", "EndpointArn": "arn:aws:sagemaker:eu-west-1:123:endpoint/x",
             "EndpointConfigName": "live", "EndpointStatus": "InService",
             "CreationTime": "2026-11-01T00:00:00Z", "LastModifiedTime": "2026-11-01T00:00:00Z"},
        )  # fmt: skip
        stub.add_response("describe_endpoint_config", live)
        model = {"ModelName": "m7", "ModelArn": "arn:aws:sagemaker:eu-west-1:123:model/m7",
                 "CreationTime": "2026-11-01T00:00:00Z"}  # fmt: skip
        stub.add_response("list_models", {"Models": [model]})  # made by an earlier attempt: reused
        config = {"EndpointConfigName": "c", "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:123:endpoint-config/c",
                  "CreationTime": "2026-11-01T00:00:00Z"}  # fmt: skip
        stub.add_response("list_endpoint_configs", {"EndpointConfigs": [config]})
        expected = sm.update_endpoint_request("rankops-staging-ranker", ANY, sm.DeploymentPolicy(**policy), ["p1-5xx"])
        stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:eu-west-1:123:endpoint/x"}, expected)
        result = SageMakerEndpoint("rankops-staging-ranker", client, None).run("promote", event)
        stub.assert_no_pending_responses()
    assert result["mode"] == "off"
    routing = expected["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "LINEAR", "WaitIntervalInSeconds": 60, "LinearStepSize": {"Type": "CAPACITY_PERCENT",
                                                                                          "Value": 25}}  # fmt: skip


def test_endpoint_configs_per_mode_are_valid() -> None:
    off = sm.endpoint_config_request("cfg-off", CHAMPION)
    shadow = sm.endpoint_config_request("cfg-shadow", CHAMPION, CHALLENGER, "shadow", shadow_sampling_percent=50)
    canary = sm.endpoint_config_request(
        "cfg-canary", CHAMPION, CHALLENGER, "canary", 0.1, data_capture_uri="s3://bucket/capture", kms_key_id="key"
    )
    for request in (off, shadow, canary):
        valid("CreateEndpointConfig", request)
    assert [v["VariantName"] for v in off["ProductionVariants"]] == ["champion"]
    assert shadow["ShadowProductionVariants"][0]["InitialVariantWeight"] == 0.5
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in canary["ProductionVariants"]}
    assert weights == pytest.approx({"champion": 0.9, "challenger": 0.1})
    with pytest.raises(ValueError, match="needs a challenger"):
        sm.endpoint_config_request("c", CHAMPION, None, "canary", 0.1)


def test_canary_ramp_and_deploy_through_the_sagemaker_client() -> None:
    ramp = sm.canary_weights_request("rankops-prod", 0.5)
    valid("UpdateEndpointWeightsAndCapacities", ramp)
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    policy = sm.DeploymentPolicy()
    update = sm.update_endpoint_request("rankops-prod", "cfg-7", policy, ["alarm"])
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/rankops-prod"
    with Stubber(client) as stub:
        stub.add_response("update_endpoint", {"EndpointArn": arn}, update)
        stub.add_response("update_endpoint_weights_and_capacities", {"EndpointArn": arn}, ramp)
        assert sm.deploy_blue_green(client, "rankops-prod", "cfg-7", policy, ["alarm"]) == arn
        client.update_endpoint_weights_and_capacities(**ramp)
        stub.assert_no_pending_responses()


# -- checks -------------------------------------------------------------------------------------
def test_post_traffic_thresholds_and_request_shape() -> None:
    event = checks.PostTrafficEvent.from_event(
        {
            "endpoint_name": "rankops-prod",
            "variant_name": "challenger",
            "min_invocations": 100,
            "business_metric": {
                "namespace": "rankops",
                "name": "CTR",
                "dimensions": {"Variant": "challenger"},
                "minimum": 0.05,
            },
        }
    )
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC)
    request = checks.metric_data_request(event, end - timedelta(minutes=10), end)
    cloudwatch = botocore.session.get_session().get_service_model("cloudwatch")
    report = ParamValidator().validate(request, cloudwatch.operation_model("GetMetricData").input_shape)
    assert not report.has_errors(), report.generate_report()
    latency = next(q for q in request["MetricDataQueries"] if q["Id"] == "latency")
    assert latency["MetricStat"]["Stat"] == "p95" and latency["MetricStat"]["Metric"]["MetricName"] == "ModelLatency"

    healthy = {"invocations": 1000.0, "errors_5xx": 0.0, "latency_ms": 12.0, "business": 0.07}
    assert checks.post_traffic(healthy, event).passed
    failing = checks.post_traffic({**healthy, "errors_5xx": 5.0, "business": 0.01}, event)
    assert {c["name"] for c in failing.checks if not c["passed"]} == {"error_rate", "business"}
    assert not checks.post_traffic({**healthy, "invocations": 10.0}, event).passed


def test_post_traffic_judges_the_new_versions_degraded_answers() -> None:
    """A model that answers 200 from a lower fallback level must not pass as healthy."""
    from datetime import UTC, datetime, timedelta

    event = checks.PostTrafficEvent.from_event(
        {"endpoint_name": "rankops-prod-ranker", "variant_name": "challenger", "model_version": 8}
    )
    end = datetime.now(UTC)
    request = checks.metric_data_request(event, end - timedelta(minutes=10), end)
    cloudwatch = botocore.session.get_session().get_service_model("cloudwatch")
    report = ParamValidator().validate(request, cloudwatch.operation_model("GetMetricData").input_shape)
    assert not report.has_errors(), report.generate_report()
    queries = {q["Id"]: q["MetricStat"]["Metric"] for q in request["MetricDataQueries"]}
    assert queries["degraded"] == {
        "Namespace": "rankops/rankops-prod-ranker",
        "MetricName": "DegradedAnswers",
        "Dimensions": [{"Name": "ModelVersion", "Value": "8"}],
    }
    figures = checks.traffic_figures(
        {
            "MetricDataResults": [
                {"Id": "invocations", "Values": [600.0, 400.0]},
                {"Id": "errors", "Values": [0.0]},
                {"Id": "latency", "Values": [12000.0]},
                {"Id": "answers", "Values": [600.0, 400.0]},
                {"Id": "degraded", "Values": [50.0]},
            ]
        }
    )
    assert (figures["answers"], figures["degraded"]) == (1000.0, 50.0)
    degraded = checks.post_traffic(figures, event)
    assert [c["name"] for c in degraded.checks if not c["passed"]] == ["degraded_answers"]
    assert "50 of 1000 (5.0%" in next(c["detail"] for c in degraded.checks if not c["passed"])
    # a short window: one degraded answer of 18 is noise at a 1 % limit, two are not
    short = {**figures, "answers": 18.0, "degraded": 1.0}
    assert checks.post_traffic(short, event).passed
    assert not checks.post_traffic({**short, "degraded": 2.0}, event).passed
    assert checks.post_traffic({**figures, "degraded": 0.0}, event).passed
    silent = checks.post_traffic({**figures, "answers": None, "degraded": None}, event)
    assert not silent.passed, "no summary lines at all is no evidence"
