"""Fixtures shared by integration tests: the rehearsal's prod templates, S3 (moto) for the lake tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import moto_s3


@pytest.fixture(scope="session")
def prod_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prod environment synthesized once per test run (a ``cdk.out`` folder), in-process and
    without CDK's slow built-in validation, as ``tests/infra/conftest.py`` does (cfn-lint checks the
    templates there)."""
    from aws_cdk import App

    from infra.app_builder import build, cdk_context

    outdir = tmp_path_factory.mktemp("cdk-prod")
    app = App(context=cdk_context("prod"), outdir=str(outdir), builtin_cloud_formation_validation=False)
    build(app)
    app.synth()
    return outdir


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server for one test, the AWS environment pointed at it (see tests/moto_s3.py)."""
    yield from moto_s3.moto_s3(monkeypatch)


@pytest.fixture
def lake_bucket(s3_endpoint: str, synthesized_env) -> str:  # type: ignore[no-untyped-def]
    """The dev environment's raw-zone bucket, built from its synthesized templates on the moto
    server (see ``moto_s3.deployed_lake_bucket``): its deployed name."""
    return moto_s3.deployed_lake_bucket(s3_endpoint, synthesized_env("dev"))
