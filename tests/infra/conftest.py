"""Synthesize each environment once per test run (cdk-nag runs as a validation plugin:
synthesis fails if any AwsSolutions rule is violated and not acknowledged)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import App, Stack

from infra.app_builder import build, cdk_context

ENVS = ("dev", "staging", "prod")


@dataclass
class Synthesized:
    env: str
    outdir: Path
    stacks: dict[str, Stack]

    def template(self, stack_suffix: str) -> dict:
        name = next(n for n in self.stacks if n.endswith(stack_suffix))
        return json.loads((self.outdir / f"{name}.template.json").read_text())

    def report(self) -> dict:
        return json.loads((self.outdir / "validation-report.json").read_text())


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    result = {}
    for env in ENVS:
        outdir = tmp_path_factory.mktemp(f"cdk-{env}")
        # CDK's built-in "CloudFormation Validate" plugin never fails synthesis (it downgrades its
        # findings to warnings) and costs ~12 s per environment; cfn-lint checks every template instead.
        app = App(context=cdk_context(env), outdir=str(outdir), builtin_cloud_formation_validation=False)
        stacks = build(app)
        app.synth()
        result[env] = Synthesized(env, outdir, {s.stack_name: s for s in stacks})
    return result
