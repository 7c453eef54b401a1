"""Every deployed Lambda has an invoker in the synthesized templates: the state machine (a
``DefinitionSubstitutions`` entry its definition uses), an EventBridge rule's target, an event
source mapping, or a custom resource (CloudFormation invokes its ``ServiceToken``). A function
nothing invokes is dead weight with permissions (the deploy-hook Lambdas were: docs/release.md
says what judges a release)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.conftest import ENVS, STACKS, Synthesized


def _references(value: Any) -> Iterator[str]:
    """Logical ids ``value`` points at (``Ref``, ``Fn::GetAtt``), anywhere inside it."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            yield value["Ref"]
        att = value.get("Fn::GetAtt")
        if isinstance(att, list) and att:
            yield str(att[0])
        for inner in value.values():
            yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _invoking_parts(resource: dict[str, Any]) -> Any:
    """The part of ``resource`` that makes AWS invoke a function, or ``None``."""
    kind, props = resource["Type"], resource.get("Properties", {})
    if kind == "AWS::StepFunctions::StateMachine":  # a substitution counts where the definition uses it
        text = json.dumps(props.get("DefinitionString"))
        return {k: v for k, v in props.get("DefinitionSubstitutions", {}).items() if "${" + k + "}" in text}
    if kind == "AWS::Events::Rule":
        return props.get("Targets")
    if kind == "AWS::Lambda::EventSourceMapping":
        return props.get("FunctionName")
    if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
        return props
    return None


def _uninvoked(synthesized: Synthesized) -> list[str]:
    dead = []
    for suffix in STACKS:
        resources = synthesized.template(suffix)["Resources"]
        invoked = {ref for r in resources.values() for ref in _references(_invoking_parts(r))}
        dead += [
            f"{suffix}/{logical_id}"
            for logical_id, r in resources.items()
            if r["Type"] == "AWS::Lambda::Function" and logical_id not in invoked
        ]
    return dead


@pytest.mark.parametrize("env", ENVS)
def test_every_deployed_lambda_is_invoked_by_something(synthesized: dict[str, Synthesized], env: str) -> None:
    assert _uninvoked(synthesized[env]) == []


def test_the_check_finds_a_function_nothing_invokes(synthesized: dict[str, Synthesized]) -> None:
    """The check above can fail: drop the state machine's substitutions and the pipeline's step
    functions are reported."""
    real = synthesized["dev"]
    pipeline = real.template("pipeline")
    machine = next(r for r in pipeline["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    saved = machine["Properties"].pop("DefinitionSubstitutions")
    try:
        dead = _uninvoked(real)
    finally:
        machine["Properties"]["DefinitionSubstitutions"] = saved
    assert {d.split("/")[0] for d in dead} == {"pipeline"} and len(dead) >= 3, dead
