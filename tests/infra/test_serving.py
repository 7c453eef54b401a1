"""The endpoint: model in the VPC, data capture, blue/green with auto rollback, autoscaling."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from infra.config import ALARM_5XX, ALARM_LATENCY, ALARM_MODEL_ERRORS, SERVING_VARIANT
from infra.constructs.serving_endpoint import config_digest
from tests.infra.conftest import ENVS

ROUTING = {"dev": "ALL_AT_ONCE", "staging": "LINEAR", "prod": "CANARY"}


def one(synth, type_: str) -> dict:  # type: ignore[no-untyped-def]
    (resource,) = synth.resources("serving", type_).values()
    return resource["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_blue_green_deployment_config(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    cfg = synth.config.aws.endpoint
    endpoint = one(synth, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == f"rankops-{env}-ranker"
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    assert routing["Type"] == ROUTING[env]
    assert routing["WaitIntervalInSeconds"] == cfg.wait_interval_seconds
    if env == "prod":
        assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    if env == "staging":
        assert routing["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert policy["TerminationWaitInSeconds"] == cfg.termination_wait_seconds
    assert policy["MaximumExecutionTimeoutInSeconds"] == cfg.max_execution_timeout_seconds
    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]


@pytest.mark.parametrize("env", ENVS)
def test_rollback_alarms_are_the_p1_endpoint_alarms(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    endpoint = one(synth, "AWS::SageMaker::Endpoint")
    referenced = [a["AlarmName"]["Ref"] for a in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    alarms = synth.resources("serving", "AWS::CloudWatch::Alarm")
    assert sorted(referenced) == sorted(alarms)
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    assert set(by_name) == {synth.config.alarm_name(k) for k in (ALARM_5XX, ALARM_LATENCY, ALARM_MODEL_ERRORS)}
    latency = by_name[synth.config.alarm_name(ALARM_LATENCY)]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("ModelLatency", "p99")
    assert latency["Threshold"] == synth.config.latency_p99_ms * 1000 == 150_000
    dims = {d["Name"]: d["Value"] for d in latency["Dimensions"]}
    assert dims == {"EndpointName": f"rankops-{env}-ranker", "VariantName": SERVING_VARIANT}
    errors = by_name[synth.config.alarm_name(ALARM_5XX)]
    (expression,) = [m["Expression"] for m in errors["Metrics"] if "Expression" in m]
    assert expression == "IF(invocations > 0, 100 * invocation5xxerrors / invocations, 0)"
    assert errors["Threshold"] == synth.config.aws.alarms.error_5xx_percent
    model = by_name[synth.config.alarm_name(ALARM_MODEL_ERRORS)]
    assert "InvocationModelErrors" in json.dumps(model["Metrics"])
    for alarm in by_name.values():
        assert "P1Topic" in json.dumps(alarm["AlarmActions"])
        assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("env", ENVS)
def test_model_runs_in_the_vpc_and_captures_data_to_the_lake(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    cfg = synth.config.aws.endpoint
    model = one(synth, "AWS::SageMaker::Model")
    assert len(model["VpcConfig"]["Subnets"]) == synth.config.aws.max_azs and model["VpcConfig"]["SecurityGroupIds"]
    container = model["PrimaryContainer"]
    assert "ImageRepository" in json.dumps(container["Image"]) and f":{synth.config.image_tag}" in json.dumps(
        container["Image"]
    )
    assert "models/bootstrap/model.tar.gz" in json.dumps(container["ModelDataUrl"])
    assert container["Environment"]["RANKOPS_ENV"] == env
    assert "RANKOPS_ONLINE_STORE__DYNAMODB__TABLE" in container["Environment"]
    config = one(synth, "AWS::SageMaker::EndpointConfig")
    assert "KmsKeyId" in config
    (variant,) = config["ProductionVariants"]
    assert variant["VariantName"] == SERVING_VARIANT and variant["InstanceType"] == cfg.instance_type
    assert variant["InitialInstanceCount"] == cfg.min_instances
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == cfg.data_capture_percent
    assert "LakeRawBucket" in json.dumps(capture["DestinationS3Uri"]) and "/datacapture" in json.dumps(
        capture["DestinationS3Uri"]
    )
    assert "LakeKey" in json.dumps(capture["KmsKeyId"])
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"]
    assert model["ModelName"] == config["EndpointConfigName"] == f"rankops-{env}-ranker-{config_digest(synth.config)}"


@pytest.mark.parametrize("env", ENVS)
def test_autoscaling_tracks_invocations_per_instance(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    cfg = synth.config.aws.endpoint
    target = one(synth, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["ResourceId"] == f"endpoint/rankops-{env}-ranker/variant/{SERVING_VARIANT}"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (cfg.min_instances, cfg.max_instances)
    tracking = one(synth, "AWS::ApplicationAutoScaling::ScalingPolicy")["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["TargetValue"] == cfg.invocations_per_instance


def test_a_config_change_makes_new_model_and_endpoint_config_names(synthesized) -> None:  # type: ignore[no-untyped-def]
    config = synthesized["dev"].config
    aws = config.settings.aws
    changed = replace(
        config,
        settings=config.settings.model_copy(
            update={"aws": aws.model_copy(update={"endpoint": aws.endpoint.model_copy(update={"instance_type": "x"})})}
        ),
    )
    assert config_digest(changed) != config_digest(config)
    assert config_digest(config) == config_digest(replace(config))
