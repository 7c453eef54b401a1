"""S3 for integration tests: moto's server on a free local port, buckets shaped like the deployed
lake buckets (the fixtures ``s3_endpoint`` and ``lake_bucket`` are in tests/integration/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

REGION = "eu-west-1"


def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server for the test's duration, with the AWS environment (dummy keys, its endpoint)
    pointed at it; yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield endpoint
    finally:
        server.stop()


def deployed_lake_bucket(synthesized_env: Any) -> dict[str, Any]:
    """The properties of the raw zone's bucket as CDK deploys it (versioned, like every lake bucket)."""
    template = synthesized_env("dev").template("data-lake")
    (props,) = [
        r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket" and "Raw" in k
    ]
    return dict(props)


def make_bucket(endpoint: str, bucket: str, deployed: dict[str, Any]) -> Any:
    """A fresh bucket shaped like the deployed lake bucket (its versioning): moto keeps its state per
    process, across servers, so each test names its own."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    versioning = deployed.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning["Status"]})
    return s3
