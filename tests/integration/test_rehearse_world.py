"""The rehearsal's AWS world is the synthesized templates, created through the service APIs in moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import redis

from rankops.errors import RankopsError
from rankops.features.online.redis import SERVER_PARAMETERS
from rankops.lake import ZONES, Lake
from rankops.rehearse.world import World, check_local_endpoints, load_templates, open_world, synthesize


@pytest.fixture(scope="module")
def templates_dir(prod_templates: Path) -> Path:
    return prod_templates


@pytest.fixture(scope="module")
def world(templates_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world("prod", tmp_path_factory.mktemp("world"), cdk_out=templates_dir) as built:
        yield built


def _of_type(templates: dict[str, dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r["Properties"] for t in templates.values() for r in t["Resources"].values() if r["Type"] == type_]


def test_table_has_the_template_key_schema_and_ttl(world: World, templates_dir: Path) -> None:
    (table,) = _of_type(load_templates(templates_dir, world.prefix), "AWS::DynamoDB::Table")
    ddb = world.client("dynamodb")
    described = ddb.describe_table(TableName=table["TableName"])["Table"]
    assert described["KeySchema"] == table["KeySchema"]
    assert sorted(described["AttributeDefinitions"], key=str) == sorted(table["AttributeDefinitions"], key=str)
    ttl = ddb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": table["TimeToLiveSpecification"]["AttributeName"]}


def test_alarms_exist_with_their_template_properties(world: World) -> None:
    r = world.resolver  # template properties; unnamed alarms get <stack>-<logical id>
    alarms = {r.name(stack, lid): res["Properties"] for stack, lid, res in r.resources("AWS::CloudWatch::Alarm")}
    described = {a["AlarmName"]: a for a in world.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert set(alarms) == set(described) and "rankops-prod-p1-endpoint-5xx" in alarms
    for name, alarm in alarms.items():
        live = described[name]
        for key in ("Threshold", "ComparisonOperator", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData"):
            if key in alarm:
                assert live[key] == alarm[key], (name, key)
        assert [m["Id"] for m in live.get("Metrics", [])] == [m["Id"] for m in alarm.get("Metrics", [])]
        assert all(a.startswith("arn:aws:sns:") for a in live.get("AlarmActions", [])), "actions name real topics"


def test_functions_state_machine_and_model_name_real_resources(world: World) -> None:
    release = world.function_env("release")
    (endpoint,) = world.sagemaker["AWS::SageMaker::Endpoint"]
    assert release["ENDPOINT_NAME"] == endpoint["EndpointName"]
    assert json.loads(release["DEPLOYMENT_POLICY"])["traffic_routing"]
    buckets = {b["Name"] for b in world.client("s3").list_buckets()["Buckets"]}
    tables = set(world.client("dynamodb").list_tables()["TableNames"])
    (model,) = world.sagemaker["AWS::SageMaker::Model"]
    container = model["PrimaryContainer"]["Environment"]
    assert container["RANKOPS_LAKE__RAW"].removeprefix("s3://") in buckets
    assert container["RANKOPS_ONLINE_STORE__DYNAMODB__TABLE"] in tables
    assert container["RANKOPS_ONLINE_STORE__REDIS__URL"] == world.redis_url
    definition = world.definition()
    assert "${" not in definition, "every DefinitionSubstitution is resolved"
    states = json.loads(definition)["States"]
    assert states and world.mlflow_uri in definition
    assert any(f"{b}" in definition for b in buckets), "the definition names the lake buckets"
    rules = world.client("events").list_rules()["Rules"]
    drift = [r for r in rules if "feature-drift" in r.get("EventPattern", "")]
    (target,) = world.client("events").list_targets_by_rule(Rule=drift[0]["Name"])["Targets"]
    assert target["Arn"].endswith(f":function:{world.prefix}-retrain-trigger")


def test_redis_stand_in_requires_the_template_auth_token_and_runs_with_its_parameters(world: World) -> None:
    container = world.sagemaker["AWS::SageMaker::Model"][0]["PrimaryContainer"]["Environment"]
    secret = world.client("secretsmanager").get_secret_value(
        SecretId=container["RANKOPS_ONLINE_STORE__REDIS__AUTH_SECRET_ARN"]
    )["SecretString"]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(world.redis_url).ping()
    client = redis.Redis.from_url(world.redis_url, password=secret)
    assert client.ping()
    # ... and runs with the template's parameter group, which holds what the store expects
    assert client.config_get("lazyfree-lazy-expire") == {"lazyfree-lazy-expire": "yes"} == SERVER_PARAMETERS


def test_lake_reaches_the_world_through_pyarrow(world: World) -> None:
    container = world.sagemaker["AWS::SageMaker::Model"][0]["PrimaryContainer"]["Environment"]
    lake = Lake({z: container[f"RANKOPS_LAKE__{z.upper()}"] for z in ZONES})
    lake.write_partition("raw", "events", {"dt": "2026-11-01"}, pa.table({"x": [1, 2]}), run_id="a")
    assert lake.read("raw", "events")["x"].to_pylist() == [1, 2]


def test_a_non_local_endpoint_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    check_local_endpoints()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.amazonaws.com")
    with pytest.raises(RankopsError, match=r"AWS_ENDPOINT_URL_DYNAMODB.*refusing"):
        check_local_endpoints()
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    with pytest.raises(RankopsError, match="refusing"):
        check_local_endpoints()
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    with pytest.raises(RankopsError, match=r"credentials.*not the rehearsal's fake ones; refusing"):
        check_local_endpoints()


def test_synthesis_runs_the_cdk_app_with_the_context(tmp_path: Path) -> None:
    with pytest.raises(RankopsError, match=r"cdk synth of qa failed: rankops: error: cdk context env='qa'"):
        synthesize("qa", tmp_path)
