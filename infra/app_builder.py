"""Build the stacks of one environment into a CDK app, then apply tags and cdk-nag once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import EnvConfig, env_config
from infra.stacks.data_lake import DataLakeStack

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_context(env: str) -> dict[str, Any]:
    """cdk.json's context (feature flags, AZs) with ``env`` set: what ``cdk synth -c env=...``
    gives ``app.py``, for tests and scripts that build the app in-process."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return {**context, "env": env}


def build(app: App, env_name: str | None = None) -> list[Stack]:
    """All stacks of the environment named by ``env_name`` or the ``env`` context."""
    config: EnvConfig = env_config(env_name or app.node.try_get_context("env"))
    aws = config.settings.aws
    environment = Environment(account=aws.account, region=aws.region)
    stacks: list[Stack] = [
        DataLakeStack(
            app,
            f"{config.prefix}-data-lake",
            config=config,
            env=environment,
            description=f"rankops {config.name}: data lake (S3 zones, KMS, access logs)",
        ),
    ]
    for key, value in config.tags.items():
        Tags.of(app).add(key, value)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stacks
