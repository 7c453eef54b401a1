"""Fixtures shared by the rehearsal's integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prod_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prod environment synthesized once per test run (a ``cdk.out`` folder)."""
    from rankops.rehearse.world import synthesize

    return synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))
