"""The endpoint: model in the VPC, data capture, blue/green with auto rollback, autoscaling."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from aws_cdk import App

from infra.app_builder import build, cdk_context
from infra.config import (
    ALARM_5XX,
    ALARM_DEGRADED,
    ALARM_LATENCY,
    ALARM_MODEL_ERRORS,
    ENDPOINT_ALARMS,
    SERVING_VARIANT,
    EnvConfig,
)
from infra.constructs.serving_endpoint import config_digest
from rankops.errors import ConfigError
from tests.infra.conftest import ENVS

ROUTING = {"dev": "ALL_AT_ONCE", "staging": "ALL_AT_ONCE", "prod": "CANARY"}  # one instance: all at once


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
    assert ("CanarySize" in routing) == (ROUTING[env] == "CANARY")
    assert "LinearStepSize" not in routing
    assert policy["TerminationWaitInSeconds"] == cfg.termination_wait_seconds
    assert policy["MaximumExecutionTimeoutInSeconds"] == cfg.max_execution_timeout_seconds
    # instance counts survive an update; weights come from the config (DataCaptureConfig is not excludable)
    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]


@pytest.mark.parametrize("env", ENVS)
def test_rollback_alarms_are_the_p1_endpoint_alarms(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    endpoint = one(synth, "AWS::SageMaker::Endpoint")
    referenced = [a["AlarmName"]["Ref"] for a in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    alarms = synth.resources("serving", "AWS::CloudWatch::Alarm")
    assert sorted(referenced) == sorted(alarms)
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    assert set(by_name) == {synth.config.alarm_name(k) for k in ENDPOINT_ALARMS}
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
    degraded = by_name[synth.config.alarm_name(ALARM_DEGRADED)]
    (expression,) = [m["Expression"] for m in degraded["Metrics"] if "Expression" in m]
    assert expression == "IF(answers > 0, 100 * degraded / answers, 0)"
    assert degraded["Threshold"] == synth.config.aws.alarms.degraded_percent
    for alarm in by_name.values():
        assert "P1Topic" in json.dumps(alarm["AlarmActions"])
        assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("env", ENVS)
def test_the_servers_answer_summaries_become_metrics(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    """The container log group exists with the endpoint's name, and its metric filters turn the
    summary lines (rankops.monitoring.answer_summary) into Answers / DegradedAnswers."""
    synth = synthesized[env]
    (group,) = [
        g["Properties"]
        for g in synth.resources("serving", "AWS::Logs::LogGroup").values()
        if g["Properties"].get("LogGroupName") == f"/aws/sagemaker/Endpoints/rankops-{env}-ranker"
    ]
    assert group["RetentionInDays"] == synth.config.aws.log_retention_days
    filters = [f["Properties"] for f in synth.resources("serving", "AWS::Logs::MetricFilter").values()]
    made = {
        (t["MetricName"], t["MetricValue"], tuple(d["Key"] for d in t.get("Dimensions", [])))
        for f in filters
        for t in f["MetricTransformations"]
    }
    assert made == {
        ("Answers", "$.answers", ()),
        ("Answers", "$.answers", ("ModelVersion",)),
        ("DegradedAnswers", "$.degraded", ()),
        ("DegradedAnswers", "$.degraded", ("ModelVersion",)),
    }
    for f in filters:
        assert f["FilterPattern"] == '{ $.rankops = "answers" }'
        assert {t["MetricNamespace"] for t in f["MetricTransformations"]} == {f"rankops/rankops-{env}-ranker"}


@pytest.mark.parametrize("env", ENVS)
def test_model_runs_in_the_vpc_and_captures_data_to_the_lake(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    cfg = synth.config.aws.endpoint
    model = one(synth, "AWS::SageMaker::Model")
    assert len(model["VpcConfig"]["Subnets"]) == synth.config.aws.max_azs and model["VpcConfig"]["SecurityGroupIds"]
    container = model["PrimaryContainer"]
    image = json.dumps(container["Image"])
    assert "ImageRepository" in image and image.endswith(":" + synth.config.aws.endpoint.bootstrap_image_tag + '"]]}')
    assert "models/bootstrap/model.tar.gz" in json.dumps(container["ModelDataUrl"])
    assert container["Environment"]["RANKOPS_ENV"] == env
    assert "RANKOPS_ONLINE_STORE__DYNAMODB__TABLE" in container["Environment"]
    mlflow_root = json.dumps(container["Environment"]["RANKOPS_MLFLOW__ARTIFACT_ROOT"])
    assert "LakeArtifactsBucket" in mlflow_root and mlflow_root.endswith('"/mlflow"]]}')
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
    digest = synth.stacks[f"rankops-{env}-serving"].serving.digest
    assert model["ModelName"] == config["EndpointConfigName"] == f"rankops-{env}-ranker-{digest}"


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


def with_endpoint(config: EnvConfig, **changes: object) -> EnvConfig:
    aws = config.settings.aws
    endpoint = aws.endpoint.model_copy(update=changes)
    settings = config.settings.model_copy(update={"aws": aws.model_copy(update={"endpoint": endpoint})})
    return replace(config, settings=settings)


def with_image_tag(config: EnvConfig, tag: str) -> EnvConfig:
    aws = config.settings.aws.model_copy(update={"image_tag": tag})
    return replace(config, settings=config.settings.model_copy(update={"aws": aws}))


def test_only_what_shapes_the_bootstrap_model_and_config_renames_them(synthesized) -> None:  # type: ignore[no-untyped-def]
    """CloudFormation replaces the model and config under new names; anything else must not rename them
    (a new config name moves the endpoint back to the bootstrap model)."""
    config = synthesized["dev"].config
    env = {"RANKOPS_ENV": "dev", "RANKOPS_LAKE__RAW": "s3://raw"}
    digest = config_digest(config, env)
    assert digest == config_digest(replace(config), dict(env))
    for reset in (
        {"bootstrap_image_tag": "0.2.0"},
        {"instance_type": "ml.c6i.xlarge"},
        {"min_instances": 2, "max_instances": 4},
        {"data_capture_percent": 5},
        {"initial_model_data_url": "s3://bucket/champion/model.tar.gz"},
    ):
        assert config_digest(with_endpoint(config, **reset), env) != digest, reset
    assert config_digest(config, {**env, "RANKOPS_NEW": "x"}) != digest  # a new container variable
    for routine in (
        {"max_instances": 6},
        {"invocations_per_instance": 900, "scale_in_cooldown_seconds": 600},
        {"autoscaling": False},
        {"wait_interval_seconds": 900, "termination_wait_seconds": 600},
    ):
        assert config_digest(with_endpoint(config, **routine), env) == digest, routine
    assert config_digest(with_image_tag(config, "9.9.9"), env) == digest


def test_new_code_never_touches_the_serving_stack(synthesized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Bumping aws.image_tag (README: how new code ships) leaves the serving template byte-for-byte
    unchanged, so `cdk deploy` cannot move the endpoint off the model the pipeline released; the
    new tag reaches the pipeline's jobs and the models it creates (the ImageUri substitution)."""
    before = synthesized["dev"]
    bumped = with_image_tag(before.config, "9.9.9")
    assert bumped.image_tag != before.config.image_tag
    monkeypatch.setattr("infra.app_builder.env_config", lambda name: bumped)
    app = App(context=cdk_context("dev"), outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    build(app)
    app.synth()
    after = json.loads((tmp_path / "rankops-dev-serving.template.json").read_text())
    assert after == before.template("serving")
    pipeline = json.loads((tmp_path / "rankops-dev-pipeline.template.json").read_text())
    (machine,) = [r for r in pipeline["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    image_uri = json.dumps(machine["Properties"]["DefinitionSubstitutions"]["ImageUri"])
    assert image_uri.endswith(':9.9.9"]]}'), image_uri


def test_a_missing_bootstrap_image_tag_is_named(synthesized) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"aws\.endpoint\.bootstrap_image_tag is not set"):
        _ = with_endpoint(synthesized["dev"].config, bootstrap_image_tag=None).bootstrap_image_tag


def test_the_model_role_reads_the_models_the_pipeline_trains(synthesized) -> None:  # type: ignore[no-untyped-def]
    """Released models' data is the training job's output under artifacts/pipeline/<run>/training/."""
    (policy,) = [p for k, p in synthesized["dev"].resources("serving", "AWS::IAM::Policy").items() if "ModelRole" in k]
    reads = [
        json.dumps(r)
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if "s3:GetObject*" in st["Action"]
        for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
    ]
    assert any("LakeArtifactsBucket" in r and "/pipeline/*/training/*" in r for r in reads)
    assert any("LakeArtifactsBucket" in r and "/models/*" in r for r in reads)
    # the item snapshot's seed at start reads the offline store's feature set, nothing else there
    feature_set = synthesized["dev"].config.settings.features.feature_set
    features = [r for r in reads if "LakeFeaturesBucket" in r and "/*" in r]  # object grants
    assert features and all(f"/{feature_set}/*" in r for r in features), features
