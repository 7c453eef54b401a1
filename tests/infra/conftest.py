"""Synthesize each environment once per test run (cdk-nag runs as a validation plugin:
synthesis fails if any AwsSolutions rule is violated and not acknowledged)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.app_builder import build, cdk_context
from infra.config import EnvConfig, env_config

ENVS = ("dev", "staging", "prod")
STACKS = (
    "data-lake",
    "network",
    "alerts",
    "online-stores",
    "image",
    "mlflow",
    "feature-compute",
    "pipeline",
    "serving",
    "monitoring",
)


@dataclass
class Synthesized:
    env: str
    outdir: Path
    stacks: dict[str, Stack]
    config: EnvConfig
    _templates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def template(self, stack_suffix: str) -> dict[str, Any]:
        """The synthesized template (a dict) of the stack named ``<prefix>-<stack_suffix>``."""
        name = f"{self.config.prefix}-{stack_suffix}"
        if name not in self._templates:
            self._templates[name] = json.loads((self.outdir / f"{name}.template.json").read_text())
        return self._templates[name]

    def assertions(self, stack_suffix: str) -> Template:
        return Template.from_json(self.template(stack_suffix))

    def resources(self, stack_suffix: str, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template(stack_suffix)["Resources"].items() if v["Type"] == type_}

    def all_resources(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(stack, logical id, resource) over every stack of the environment."""
        for suffix in STACKS:
            for logical_id, resource in self.template(suffix)["Resources"].items():
                yield suffix, logical_id, resource

    def report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())

    def nag_acknowledged(self) -> dict[str, Any]:
        return json.loads((self.outdir / "nag-acknowledged.json").read_text())


_SYNTHESIZED: dict[str, Synthesized] = {}


def synthesize(env: str, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """One environment, synthesized at most once per test run (infra tests and the AWS-shaped
    tests of other layers share it)."""
    if env not in _SYNTHESIZED:
        outdir = tmp_path_factory.mktemp(f"cdk-{env}")
        # CDK's built-in "CloudFormation Validate" plugin never fails synthesis (it downgrades its
        # findings to warnings) and costs ~12 s per environment; cfn-lint checks every template instead.
        app = App(context=cdk_context(env), outdir=str(outdir), builtin_cloud_formation_validation=False)
        stacks = build(app)
        app.synth()
        _SYNTHESIZED[env] = Synthesized(env, outdir, {s.stack_name: s for s in stacks}, env_config(env))
    return _SYNTHESIZED[env]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    return {env: synthesize(env, tmp_path_factory) for env in ENVS}


def by_suffix(resources: dict[str, dict[str, Any]], fragment: str) -> dict[str, Any]:
    """The one resource whose logical id contains ``fragment``."""
    found = [r for k, r in resources.items() if fragment in k]
    assert len(found) == 1, f"expected one resource matching {fragment!r}, got {sorted(resources)}"
    return found[0]
