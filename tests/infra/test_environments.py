"""One typed config per environment feeding the same stacks; bad configuration fails synthesis clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_cdk import App

from infra.app_builder import build, cdk_context
from infra.config import env_config
from rankops.config import load_settings
from rankops.errors import ConfigError
from tests.infra.conftest import ENVS, STACKS


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_synthesizes_every_stack(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    assert sorted(synth.stacks) == sorted(f"rankops-{env}-{s}" for s in STACKS)
    for suffix in STACKS:
        assert synth.template(suffix)["Resources"], suffix
    for stack in synth.stacks.values():
        assert stack.region == "eu-west-1"


@pytest.mark.parametrize("env", ENVS)
def test_every_taggable_resource_carries_the_cost_tags(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    tagged = 0
    for _, logical_id, resource in synthesized[env].all_resources():
        tags = resource.get("Properties", {}).get("Tags")
        if isinstance(tags, list) and tags and isinstance(tags[0], dict) and "Key" in tags[0]:
            keys = {t["Key"]: t["Value"] for t in tags}
            assert keys.get("env") == env and keys.get("project") == "rankops", logical_id
            assert {"owner", "cost-centre"} <= set(keys), logical_id
            tagged += 1
    assert tagged > 30


def test_environments_differ_only_by_configuration(synthesized) -> None:  # type: ignore[no-untyped-def]
    dev, prod = synthesized["dev"], synthesized["prod"]
    assert type(dev.stacks["rankops-dev-serving"]) is type(prod.stacks["rankops-prod-serving"])
    assert dev.config.aws.multi_az is False and prod.config.aws.multi_az is True
    assert prod.config.settings.pipeline.approval_required and not dev.config.settings.pipeline.approval_required
    assert dev.config.aws.log_retention_days < prod.config.aws.log_retention_days


def test_deployment_order_follows_dependencies(synthesized) -> None:  # type: ignore[no-untyped-def]
    stacks = synthesized["dev"].stacks
    deps = {name: {d.stack_name for d in stack.dependencies} for name, stack in stacks.items()}
    assert {"rankops-dev-serving", "rankops-dev-pipeline"} <= deps["rankops-dev-monitoring"]
    assert "rankops-dev-image" in deps["rankops-dev-feature-compute"]  # the EMR image repository
    assert "rankops-dev-data-lake" in deps["rankops-dev-serving"]
    assert not deps["rankops-dev-data-lake"] and not deps["rankops-dev-network"]


def test_runtime_configuration_is_exported_as_outputs(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    outputs = {suffix: synth.template(suffix).get("Outputs", {}) for suffix in ("data-lake", "online-stores", "mlflow")}
    assert {"RawBucketName", "FeaturesBucketName", "ArtifactsBucketName"} <= set(outputs["data-lake"])
    assert {"EntityStatsTable", "RedisUrl", "RedisAuthSecretArn"} <= set(outputs["online-stores"])
    assert outputs["mlflow"]["TrackingServerArn"]["Description"] == "RANKOPS_MLFLOW__TRACKING_URI"


def test_local_is_not_deployable() -> None:
    with pytest.raises(ConfigError, match="not deployable"):
        build(App(context=cdk_context("local")))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rankops.toml"
    path.write_text(f"[defaults]\nproject = 'rankops'\n{text}\n")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aws.region = 'us-east-1'", "lambda_numpy_layer_arn is for region 'eu-west-1', not 'us-east-1'"),
        ("aws.lambda_runtime = 'python3.11'", "AWSSDKPandas-Python311"),
        ("aws.multi_az = true", "redis.replicas >= 1"),
        ("aws.log_retention_days = 10", "log_retention_days must be one of"),
        ("aws.endpoint.min_instances = 3", "max_instances (2) is below min_instances (3)"),
        ("aws.endpoint.canary_percent = 60", "canary_percent"),
        ("aws.endpoint.initial_model_data_url = 'model.tar.gz'", "must be an s3:// URL"),
        # SageMaker's canary/linear steps are shares of the fleet: one instance has none
        (
            "aws.endpoint.traffic_routing = 'LINEAR'",
            "aws.endpoint: Value error, traffic_routing LINEAR needs "
            "min_instances >= 2 (got 1); use ALL_AT_ONCE for a single-instance endpoint (from rankops.toml [defaults])",
        ),
        ("aws.endpoint.traffic_routing = 'CANARY'", "traffic_routing CANARY needs min_instances >= 2"),
    ],
)
def test_bad_aws_configuration_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env="dev", config_file=write_config(tmp_path, text), environ={})


def test_canary_and_linear_routing_need_two_instances(tmp_path: Path) -> None:
    text = "aws.endpoint.traffic_routing = 'CANARY'\naws.endpoint.min_instances = 2\naws.endpoint.max_instances = 4"
    settings = load_settings(env="dev", config_file=write_config(tmp_path, text), environ={})
    assert settings.aws.endpoint.traffic_routing == "CANARY"
    for env in ("dev", "staging", "prod"):  # every deployable environment in the repository passes
        cfg = env_config(env).aws.endpoint
        assert cfg.traffic_routing == "ALL_AT_ONCE" or cfg.min_instances >= 2, env


def test_a_configured_lambda_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    config = env_config("dev")
    aws = config.settings.aws.model_copy(update={"pipeline_lambdas": ["score_shadow"]})
    monkeypatch.setattr(
        "infra.app_builder.env_config",
        lambda name: type(config)(config.name, config.settings.model_copy(update={"aws": aws})),
    )
    with pytest.raises(ConfigError, match=r"lambdas/score_shadow/handler.py does not exist"):
        build(App(context=cdk_context("dev")))


def test_unknown_interface_endpoint_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = env_config("dev")
    aws = config.settings.aws
    bad = aws.model_copy(update={"network": aws.network.model_copy(update={"interface_endpoints": ["SAGEMAKER_APIS"]})})
    monkeypatch.setattr(
        "infra.app_builder.env_config",
        lambda name: type(config)(config.name, config.settings.model_copy(update={"aws": bad})),
    )
    with pytest.raises(ConfigError, match="SAGEMAKER_APIS"):
        build(App(context=cdk_context("dev")))
