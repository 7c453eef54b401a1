"""S3 for integration tests: moto's server on a free local port, the deployed lake buckets built
from the synthesized templates (the fixtures ``s3_endpoint`` and ``lake_bucket`` are in
tests/integration/conftest.py)."""

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


def deployed_lake_bucket(endpoint: str, synthesized: Any) -> str:
    """The raw zone's bucket as CDK deploys it (versioning, KMS encryption, public access block),
    with the environment's keys, roles and other buckets, built from ``synthesized``'s templates on
    the moto server at ``endpoint`` by the rehearsal's resource builders; returns its deployed name.
    moto keeps its state per process, across servers: the server is reset first."""
    import urllib.request

    from tests.deployed import deployed_world

    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")):
        pass
    world = deployed_world(synthesized)  # boto3 reaches the server through AWS_ENDPOINT_URL
    (found,) = [(stack, lid) for stack, lid, _ in world.resolver.resources("AWS::S3::Bucket") if "Raw" in lid]
    return str(world.resolver.name(*found))


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
