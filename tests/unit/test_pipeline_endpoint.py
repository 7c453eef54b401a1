"""The release Lambda's SageMaker backend: every request checked against botocore's model
(Stubber), in the order the pipeline's steps send them. moto has no UpdateEndpoint."""

from __future__ import annotations

import functools
import io
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from rankops import integrity, ranker_model
from rankops.errors import ReleaseError
from rankops.release import sagemaker as sm
from rankops.release.endpoint import release_step
from rankops.release.sagemaker_endpoint import SageMakerEndpoint
from tests.unit.test_ranker_model import tiny_booster

ENDPOINT = "rankops-dev-ranker"
EVENT = {
    "endpoint": ENDPOINT,
    "version": "7",
    "model_data_url": "s3://artifacts/pipeline/e/training/model.tar.gz",
    "image": "123.dkr.ecr.eu-west-1.amazonaws.com/rankops:1",
    "model_role": "arn:aws:iam::123:role/serving",
    "instance_type": "ml.c6i.large",
    "subnets": "subnet-a,subnet-b",
    "security_group": "sg-1",
    "alarms": "p1-5xx,p1-latency",
    "execution": "exec-1",
    "model_environment": {"RANKOPS_ENV": "dev"},
}


@functools.cache
def archive() -> tuple[bytes, dict[str, str]]:
    """A training job's model.tar.gz (a real model folder) and the file digests the gate recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        booster, x = tiny_booster()
        ranker_model.save_model(booster, folder, x.head(3))
        (folder / "VERSION").write_text("7\n")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        return buffer.getvalue(), integrity.folder_digests(folder)


def gated_event(**extra: Any) -> dict[str, Any]:
    return {**EVENT, "artifacts": {"files": archive()[1]}, **extra}


LIVE = {
    "EndpointConfigName": "live-config",
    "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:123:endpoint-config/live",
    "CreationTime": "2026-11-01T00:00:00Z",
    "KmsKeyId": "key-1",
    "ProductionVariants": [
        {
            "VariantName": "champion",
            "ModelName": "rankops-dev-ranker-v6-x",
            "InstanceType": "ml.c6i.large",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 1.0,
        }
    ],
    "DataCaptureConfig": {
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://raw/datacapture",
        "CaptureOptions": [{"CaptureMode": "Input"}],
    },
}


# A scaled-out fleet keeps its instance count through every update; weights come from the new config.
RETAINED = {
    "RetainAllVariantProperties": True,
    "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}],
}


def with_challenger(model: str, weight: float) -> dict[str, Any]:
    """The live config during a canary: the champion and a weighted challenger variant."""
    challenger = {
        "VariantName": "challenger",
        "ModelName": model,
        "InstanceType": "ml.c6i.large",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": weight,
    }
    return {**LIVE, "ProductionVariants": [*LIVE["ProductionVariants"], challenger]}


def live_endpoint(stub: Stubber, config: dict[str, Any] = LIVE) -> None:
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": ENDPOINT,
            "EndpointArn": "arn:aws:sagemaker:eu-west-1:123:endpoint/x",
            "EndpointConfigName": "live-config",
            "EndpointStatus": "InService",
            "CreationTime": "2026-11-01T00:00:00Z",
            "LastModifiedTime": "2026-11-01T00:00:00Z",
        },
        {"EndpointName": ENDPOINT},
    )
    stub.add_response("describe_endpoint_config", config, {"EndpointConfigName": "live-config"})


def new_model(stub: Stubber) -> None:
    stub.add_response("list_models", {"Models": []}, {"NameContains": ANY})
    stub.add_response(
        "describe_model",
        {
            "ModelName": "rankops-dev-ranker-v6-x",
            "ExecutionRoleArn": "arn:aws:iam::123:role/serving",
            "CreationTime": "2026-11-01T00:00:00Z",
            "ModelArn": "arn:aws:sagemaker:eu-west-1:123:model/x",
            "PrimaryContainer": {
                "Image": "img",
                "Environment": {"RANKOPS_LAKE__RAW": "s3://raw", "RANKOPS_ENV": "old"},
            },
        },
        {"ModelName": "rankops-dev-ranker-v6-x"},
    )
    stub.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:eu-west-1:123:model/new"},
        {
            "ModelName": ANY,
            "ExecutionRoleArn": EVENT["model_role"],
            "EnableNetworkIsolation": False,
            "PrimaryContainer": {
                "Image": EVENT["image"],
                "ModelDataUrl": EVENT["model_data_url"],
                "Environment": {
                    "RANKOPS_LAKE__RAW": "s3://raw",
                    "RANKOPS_ENV": "dev",
                    # the container re-checks its extracted folder against the verified archive
                    integrity.MODEL_DIGEST_ENV: integrity.tree_digest(archive()[1]),
                },
            },
            "VpcConfig": {"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        },
    )


def new_config(stub: Stubber, variants: dict[str, Any]) -> None:
    """A new endpoint config (none by its name yet) with the live one's key and capture, and ``variants``."""
    stub.add_response("list_endpoint_configs", {"EndpointConfigs": []}, {"NameContains": ANY})
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:123:x"},
        {"EndpointConfigName": ANY, "KmsKeyId": "key-1", "DataCaptureConfig": ANY, **variants},
    )


def endpoint(stub_setup: Any, data: bytes | None = None) -> tuple[SageMakerEndpoint, Stubber]:
    """The backend with stubbed SageMaker, and S3 holding ``data`` (default: the gated archive)
    at the event's model_data_url."""
    sm = boto3.client("sagemaker", region_name="eu-west-1")
    stub = Stubber(sm)
    stub_setup(stub)
    stub.activate()
    s3 = boto3.client("s3", region_name="eu-west-1")
    body = archive()[0] if data is None else data
    s3_stub = Stubber(s3)
    s3_stub.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(body), len(body))},
        {"Bucket": "artifacts", "Key": "pipeline/e/training/model.tar.gz"},
    )
    s3_stub.activate()
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    return SageMakerEndpoint(ENDPOINT, sm, cloudwatch, s3), stub


def test_shadow_adds_the_challenger_as_a_shadow_variant() -> None:
    def setup(stub: Stubber) -> None:
        live_endpoint(stub)
        new_model(stub)
        new_config(
            stub,
            {
                "ProductionVariants": [
                    {
                        "VariantName": "champion",
                        "ModelName": "rankops-dev-ranker-v6-x",
                        "InitialInstanceCount": 2,
                        "InstanceType": "ml.c6i.large",
                        "InitialVariantWeight": 1.0,
                    }
                ],
                "ShadowProductionVariants": [
                    {
                        "VariantName": "challenger",
                        "ModelName": ANY,
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.c6i.large",
                        "InitialVariantWeight": 1.0,
                    }
                ],
            },
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:eu-west-1:123:endpoint/x"},
            {"EndpointName": ENDPOINT, "EndpointConfigName": ANY, **RETAINED},
        )

    backend, stub = endpoint(setup)
    assert backend.run("shadow", gated_event())["mode"] == "shadow"
    stub.assert_no_pending_responses()


def test_promote_is_a_blue_green_update_rolled_back_by_the_alarms() -> None:
    def setup(stub: Stubber) -> None:
        live_endpoint(stub)
        new_model(stub)
        new_config(
            stub,
            {
                "ProductionVariants": [
                    {
                        "VariantName": "champion",
                        "ModelName": ANY,
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.c6i.large",
                        "InitialVariantWeight": 1.0,
                    }
                ],
            },
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:eu-west-1:123:endpoint/x"},
            {
                "EndpointName": ENDPOINT,
                "EndpointConfigName": ANY,
                **RETAINED,
                "DeploymentConfig": {
                    "BlueGreenUpdatePolicy": ANY,
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "p1-5xx"}, {"AlarmName": "p1-latency"}]},
                },
            },
        )

    backend, stub = endpoint(setup)
    result = backend.run("promote", gated_event())
    assert result["mode"] == "off" and result["guardrails"] is True
    stub.assert_no_pending_responses()


def test_promote_from_a_canary_keeps_the_variant_names_so_it_is_guarded() -> None:
    """Deployment guardrails need the live variant names: after a canary (champion + challenger) the
    promotion config keeps both, the new model behind each, all traffic on champion."""

    def setup(stub: Stubber) -> None:
        live_endpoint(stub, with_challenger("rankops-dev-ranker-v7-x", 1.0))
        new_model(stub)
        new_config(stub, {"ProductionVariants": ANY})
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:eu-west-1:123:endpoint/x"},
            {"EndpointName": ENDPOINT, "EndpointConfigName": ANY, **RETAINED, "DeploymentConfig": ANY},
        )

    backend, stub = endpoint(setup)
    assert backend.run("promote", gated_event())["guardrails"] is True
    stub.assert_no_pending_responses()
    model = sm.promotion_config_request("c", sm.VariantSpec("m8", "ml.c6i.large"), ["champion", "challenger"])
    weights = {v["VariantName"]: (v["ModelName"], v["InitialVariantWeight"]) for v in model["ProductionVariants"]}
    assert weights == {"champion": ("m8", 1.0), "challenger": ("m8", 0.0)}


def tampered_archive() -> bytes:
    """The gated archive with one byte of its model file changed."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive()[0])) as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "model.lgb":
                data = data.replace(b"leaf_value=", b"leaf_value=1", 1)
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "artifacts", "message"),
    [
        (tampered_archive, {"files": None}, r"is not the model the gate judged \(model.lgb changed\)"),
        (lambda: archive()[0], {}, "the gate recorded no artifact digests"),
        (lambda: b"not a tarball", {"files": None}, "not a readable tar.gz"),
    ],
)
def test_a_tampered_or_ungated_archive_is_refused_before_any_model_is_made(
    data: Any, artifacts: dict[str, Any], message: str
) -> None:
    def setup(stub: Stubber) -> None:
        live_endpoint(stub)
        stub.add_response("list_models", {"Models": []}, {"NameContains": ANY})  # and nothing after it

    backend, stub = endpoint(setup, data())
    gated = {"files": archive()[1]} if "files" in artifacts else {}
    with pytest.raises(ReleaseError, match=message):
        backend.run("promote", {**EVENT, "artifacts": gated})
    stub.assert_no_pending_responses()


def test_a_running_canary_only_moves_the_weights() -> None:
    def setup(stub: Stubber) -> None:
        live_endpoint(stub, with_challenger("m7", 0.1))
        stub.add_response(
            "update_endpoint_weights_and_capacities",
            {"EndpointArn": "arn:aws:sagemaker:eu-west-1:123:x"},
            {
                "EndpointName": ENDPOINT,
                "DesiredWeightsAndCapacities": [
                    {"VariantName": "champion", "DesiredWeight": 0.5},
                    {"VariantName": "challenger", "DesiredWeight": 0.5},
                ],
            },
        )

    backend, stub = endpoint(setup)
    assert backend.run("canary", {**EVENT, "share": 0.5}) == {"mode": "canary", "canary_share": 0.5}
    stub.assert_no_pending_responses()


def test_bad_release_events_are_named() -> None:
    with pytest.raises(ReleaseError, match="unknown release action 'launch'"):
        release_step({"action": "launch", "endpoint": ENDPOINT})
    with pytest.raises(ReleaseError, match="needs an endpoint"):
        release_step({"action": "shadow"})


def test_the_release_lambda_dispatches_through_the_endpoint_interface(tmp_path: Any) -> None:
    """One interface, two implementations, chosen by the endpoint's name alone."""
    from rankops.release.endpoint import Endpoint, open_endpoint
    from rankops.release.local_endpoint import LocalEndpoint

    local = open_endpoint(f"local:{tmp_path}")
    remote = open_endpoint(ENDPOINT)
    assert isinstance(local, LocalEndpoint) and isinstance(local, Endpoint)
    assert local.name == f"local:{tmp_path}"
    assert isinstance(remote, SageMakerEndpoint) and isinstance(remote, Endpoint)
    assert remote.name == ENDPOINT
