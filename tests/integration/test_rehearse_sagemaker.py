"""The SageMaker endpoint emulator: the template's endpoint deployed, invoked, updated and rolled
back by its real alarms, every call through boto3 and validated against botocore's model."""

from __future__ import annotations

import contextlib
import json
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from rankops.monitoring.data_capture import parse_line
from rankops.rehearse.container_logs import parse_pattern
from rankops.rehearse.sagemaker_emulator import Emulator
from rankops.rehearse.sagemaker_http import serving
from rankops.rehearse.world import World, open_world
from tests import serving_helpers as h
from tests.integration.test_serving_container import model_archive


@pytest.fixture(scope="module")
def archive(serving_home: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    model_archive(serving_home.settings, folder / "model")
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        for path in (folder / "model").iterdir():
            tar.add(path, arcname=path.name)
    return folder / "model.tar.gz"


@pytest.fixture(scope="module")
def endpoint(
    prod_templates: Path, archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, Emulator]]:
    work = tmp_path_factory.mktemp("sm")
    with open_world("prod", work / "world", cdk_out=prod_templates) as world:
        emulator = Emulator(world, work / "endpoints", clock_factor=0.01, capture_flush_s=3600.0)  # flushed by hand
        with serving(emulator) as url, pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL_SAGEMAKER", url)
            mp.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
            (model,) = world.sagemaker["AWS::SageMaker::Model"]
            bucket, _, key = model["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://").partition("/")
            world.client("s3").upload_file(str(archive), bucket, key)
            yield world, emulator


def _invoke(n: int, **kwargs: Any) -> list[str]:
    runtime = boto3.client("sagemaker-runtime")
    return [
        runtime.invoke_endpoint(
            EndpointName="rankops-prod-ranker",
            Body=json.dumps(h.request(5, user=f"u-{i}")),
            ContentType="application/json",
            **kwargs,
        )["InvokedProductionVariant"]
        for i in range(n)
    ]


def test_template_endpoint_serves_captures_and_publishes(endpoint: tuple[World, Emulator]) -> None:
    world, emulator = endpoint
    sm = boto3.client("sagemaker")
    (model,), (config,), (ep,) = (
        world.sagemaker[f"AWS::SageMaker::{t}"] for t in ("Model", "EndpointConfig", "Endpoint")
    )
    sm.create_model(**{k: v for k, v in model.items() if k != "Tags"})
    sm.create_endpoint_config(**config)
    sm.create_endpoint(EndpointName=ep["EndpointName"], EndpointConfigName=ep["EndpointConfigName"])
    assert sm.describe_endpoint(EndpointName=ep["EndpointName"])["EndpointStatus"] == "Creating"
    assert emulator.wait_for(ep["EndpointName"]) == "InService"
    assert set(_invoke(4)) == {"champion"}
    capture = config["DataCaptureConfig"]["DestinationS3Uri"].removeprefix("s3://")
    bucket, _, prefix = capture.partition("/")
    assert "Contents" not in world.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix), "buffered"
    written = emulator.flush_capture()
    keys = [o["Key"] for o in world.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    # one file, or two when an emulated hour turned meanwhile (every 36 s real at 0.01)
    assert written == len(keys) in (1, 2) and all(f"/{ep['EndpointName']}/champion/" in k for k in keys)
    bodies = [world.client("s3").get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
    assert len([parse_line(line, ep["EndpointName"], "champion") for b in bodies for line in b.splitlines()]) == 4
    emulator.flush_metrics()  # published off the request path, in batches
    metrics = world.client("cloudwatch").list_metrics(Namespace="AWS/SageMaker")["Metrics"]
    assert {"Invocations", "Invocation5XXErrors", "ModelLatency"} <= {m["MetricName"] for m in metrics}


def test_container_output_becomes_the_templates_answer_metrics(endpoint: tuple[World, Emulator]) -> None:
    """The serve process's answer summaries reach the endpoint's log group, and the template's metric
    filters (moto stores, never applies them) turn them into Answers/DegradedAnswers per model version."""
    world, emulator = endpoint
    (ep,) = world.sagemaker["AWS::SageMaker::Endpoint"]
    name, cw, logs = ep["EndpointName"], world.client("cloudwatch"), world.client("logs")
    before = emulator.logs.datapoints
    _invoke(3)
    # a summary line every 60 emulated s: 4 datapoints (answers and degraded, total and per version)
    assert emulator.logs.wait_for_datapoints(before + 4, timeout_s=60), "no answer summary shipped"
    found = cw.list_metrics(Namespace=f"rankops/{name}", MetricName="Answers")["Metrics"]
    versions = {d["Value"] for m in found for d in m["Dimensions"] if d["Name"] == "ModelVersion"}
    assert versions, found
    now, version = emulator.clock.now(), [{"Name": "ModelVersion", "Value": min(versions)}]
    answered = cw.get_metric_statistics(
        Namespace=f"rankops/{name}", MetricName="Answers", Dimensions=version,
        StartTime=now - timedelta(hours=2), EndTime=now + timedelta(minutes=1), Period=7200, Statistics=["Sum"],
    )["Datapoints"]  # fmt: skip
    assert sum(p["Sum"] for p in answered) >= 3
    streams = logs.describe_log_streams(logGroupName=f"/aws/sagemaker/Endpoints/{name}")["logStreams"]
    assert any(s["logStreamName"].startswith("champion/") for s in streams)
    filters = logs.describe_metric_filters(logGroupName=f"/aws/sagemaker/Endpoints/{name}")["metricFilters"]
    assert {f["metricTransformations"][0]["metricName"] for f in filters} == {"Answers", "DegradedAnswers"}
    with pytest.raises(ValueError, match="does not apply"):
        parse_pattern("[ip, user, status = 5*]")  # a space-delimited pattern: refused, never silently unmatched


def test_requests_are_validated_against_botocore_model(endpoint: tuple[World, Emulator]) -> None:
    url = boto3.client("sagemaker").meta.endpoint_url
    request = urllib.request.Request(
        url, data=b'{"PrimaryContainer": {}}', method="POST", headers={"X-Amz-Target": "SageMaker.CreateModel"}
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    assert raised.value.code == 400
    assert "ModelName" in json.loads(raised.value.read())["message"]


def test_canary_update_is_rolled_back_by_the_template_5xx_alarm(endpoint: tuple[World, Emulator]) -> None:
    world, emulator = endpoint
    sm = boto3.client("sagemaker")
    (model,), (config,), (ep,) = (
        world.sagemaker[f"AWS::SageMaker::{t}"] for t in ("Model", "EndpointConfig", "Endpoint")
    )
    name = ep["EndpointName"]
    sm.create_model(**{**{k: v for k, v in model.items() if k != "Tags"}, "ModelName": "challenger"})
    variants = [{**config["ProductionVariants"][0], "ModelName": "challenger"}]
    sm.create_endpoint_config(**{**config, "EndpointConfigName": "challenger", "ProductionVariants": variants})
    # the template's deployment, watched by its 5xx alarm alone: this fixture's answers all come from
    # the fallback chain (its online stores are empty), which the degraded-answers alarm judges below
    deployment = ep["DeploymentConfig"]
    fivexx = [a for a in deployment["AutoRollbackConfiguration"]["Alarms"] if a["AlarmName"].endswith("-5xx")]
    assert len(fivexx) == 1
    deployment = {**deployment, "AutoRollbackConfiguration": {"Alarms": fivexx}}
    sm.update_endpoint(EndpointName=name, EndpointConfigName="challenger", DeploymentConfig=deployment)
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"
    live = emulator.endpoints[name]
    while live.new is None or live.new_share == 0.0:  # the canary fleet is up and takes its share
        assert emulator.wait_for(name, ("Updating",)) == "Updating"
        _invoke(1)
    for server in live.new.servers.values():
        server.proc.kill()  # the challenger's container dies: its share of traffic answers 5xx
    while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating":
        with contextlib.suppress(sm.exceptions.ClientError):
            _invoke(1)
    assert emulator.wait_for(name) == "InService"
    described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointConfigName"] == ep["EndpointConfigName"], "the old fleet serves again"
    assert "rankops-prod-p1-endpoint-5xx" in described["FailureReason"]
    assert "RollingBack" in live.events
    alarm = world.client("cloudwatch").describe_alarms(AlarmNames=["rankops-prod-p1-endpoint-5xx"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    assert set(_invoke(3)) == {"champion"}


def test_an_update_whose_answers_degrade_is_rolled_back_by_the_log_derived_alarm(
    endpoint: tuple[World, Emulator],
) -> None:
    """Every answer of this fixture comes from the fallback chain (the world's online stores are
    empty): the servers' summaries, shipped and filtered into DegradedAnswers, drive the template's
    degraded-answers alarm, which rolls the template's blue/green update back (no 5xx at all)."""
    world, emulator = endpoint
    sm = boto3.client("sagemaker")
    (config,), (ep,) = (world.sagemaker[f"AWS::SageMaker::{t}"] for t in ("EndpointConfig", "Endpoint"))
    name = ep["EndpointName"]
    sm.create_endpoint_config(**{**config, "EndpointConfigName": "degraded"})
    sm.update_endpoint(EndpointName=name, EndpointConfigName="degraded", DeploymentConfig=ep["DeploymentConfig"])
    live = emulator.endpoints[name]
    before = len(live.events)
    while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating":
        _invoke(1)
    assert emulator.wait_for(name) == "InService"
    described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointConfigName"] == ep["EndpointConfigName"], "the old fleet serves again"
    assert "rankops-prod-p1-endpoint-degraded-answers" in described["FailureReason"]
    assert "RollingBack" in live.events[before:]
