"""Fixtures shared by integration tests: the rehearsal's prod templates, S3 (moto) for the lake tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def lake_bucket(synthesized_env) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The properties of a lake bucket as CDK deploys it: pass to ``moto_s3.make_bucket``."""
    return moto_s3.deployed_lake_bucket(synthesized_env)
