"""Fixtures shared by the rehearsal's integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest


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
