"""boto3 clients are made once per endpoint, region and credentials, as a Lambda keeps them."""

from __future__ import annotations

import pytest

from rankops.aws_clients import client


def test_a_client_is_reused_until_its_endpoint_region_or_credentials_change(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    first = client("s3")
    assert client("s3") is first, "the same settings: the same client"
    assert client("sagemaker") is not first and client("sagemaker").meta.service_model.service_name == "sagemaker"

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566")
    elsewhere = client("s3")
    assert elsewhere is not first and elsewhere.meta.endpoint_url == "http://127.0.0.1:4566"

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert client("s3").meta.region_name == "us-east-1"

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "other")
    assert client("s3").meta.region_name == "us-east-1" and client("s3") is not elsewhere
