"""The deployment-hook Lambdas, called directly with events, against moto's SageMaker
runtime (answering with responses our real server produced) and CloudWatch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests
from moto import mock_aws

from lambdas.post_traffic.handler import handler as post_traffic
from lambdas.pre_traffic.handler import handler as pre_traffic
from rankops.serving.server import build_server
from tests import serving_helpers as h

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def queue_endpoint_results(bodies: list[dict]) -> None:  # type: ignore[type-arg]
    results = [
        {"Body": json.dumps(b), "ContentType": "application/json", "InvokedProductionVariant": "challenger"}
        for b in bodies
    ]
    answer = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"region": REGION, "account_id": "123456789012", "results": results},
        timeout=5,
    )
    assert answer.status_code == 201


def test_pre_traffic_hook_passes_real_rankings_and_fails_a_broken_one(serving_home, aws) -> None:  # type: ignore[no-untyped-def]
    server = build_server(serving_home.settings)
    golden_requests = [h.request(8, user=f"u-{k}", start=10 * k) for k in range(3)]
    client = h.AsgiClient(server.app)
    answers = [client.post("/invocations", json=r).json() for r in golden_requests]
    client.close()
    top = answers[0]["ranking"][0]["item_id"]
    golden = [{"name": f"g{k}", "request": r} for k, r in enumerate(golden_requests)]
    golden[0]["expect"] = {"top": top}
    event = {
        "endpoint_name": "rankops-dev",
        "target_variant": "challenger",
        "golden_requests": golden,
        "max_latency_p95_ms": 2000,
    }

    queue_endpoint_results(answers)
    result = pre_traffic(event, None)
    assert result["passed"], result
    assert [c["name"] for c in result["checks"]] == ["g0", "g1", "g2", "latency"]

    broken = json.loads(json.dumps(answers))
    broken[1]["ranking"].reverse()  # scores no longer descending
    queue_endpoint_results(broken)
    event["golden_requests"] = [
        {**g, "request": {**g["request"], "user_id": g["request"]["user_id"] + "-again"}} for g in golden
    ]
    result = pre_traffic(event, None)
    assert not result["passed"]
    assert [c["name"] for c in result["checks"] if not c["passed"]] == ["g1"]
    server.ranker.lookup.close()


def put(cloudwatch, name: str, value: float, namespace: str = "AWS/SageMaker", dims: dict | None = None) -> None:  # type: ignore[no-untyped-def,type-arg]
    dims = dims or {"EndpointName": "rankops-dev", "VariantName": "challenger"}
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            }
        ],
    )


def test_post_traffic_hook_reads_cloudwatch(aws) -> None:  # type: ignore[no-untyped-def]
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    put(cloudwatch, "Invocations", 5000)
    put(cloudwatch, "Invocation5XXErrors", 0)
    put(cloudwatch, "ModelLatency", 4200)  # microseconds, as SageMaker reports it
    put(cloudwatch, "ClickThroughRate", 0.08, "rankops", {"Variant": "challenger"})
    event = {
        "endpoint_name": "rankops-dev",
        "variant_name": "challenger",
        "min_invocations": 1000,
        "latency_stat": "Maximum",  # moto computes no percentiles; production uses p95
        "business_metric": {
            "namespace": "rankops",
            "name": "ClickThroughRate",
            "dimensions": {"Variant": "challenger"},
            "minimum": 0.05,
        },
    }
    result = post_traffic(event, None)
    assert result["passed"], result
    assert result["figures"]["latency_ms"] == pytest.approx(4.2)

    put(cloudwatch, "Invocation5XXErrors", 50)
    result = post_traffic(event, None)
    assert not result["passed"]
    assert [c["name"] for c in result["checks"] if not c["passed"]] == ["error_rate"]
    with pytest.raises(ValueError, match="the event needs 'variant_name'"):
        post_traffic({"endpoint_name": "rankops-dev"}, None)
