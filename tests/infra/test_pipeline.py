"""The pipeline stack: state machine (logging, X-Ray, substitutions), its Lambdas, its triggers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from statelint.linter import Linter

from infra.config import ALARM_DRIFT
from infra.constructs.pipeline_definition_source import (
    RESOURCE_KEYS,
    pipeline_render,
    placeholder_render,
    render_definition,
)
from lambdas.retrain_trigger.handler import EMERGENCY_DETAIL_TYPE
from rankops.errors import ConfigError
from tests.infra.conftest import ENVS, by_suffix

SNAPSHOT = Path(__file__).parent / "snapshots" / "pipeline_definition.asl.json"


def state_machine(synth) -> dict:  # type: ignore[no-untyped-def]
    (machine,) = synth.resources("pipeline", "AWS::StepFunctions::StateMachine").values()
    return machine["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_state_machine_logs_everything_and_traces(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    props = state_machine(synthesized[env])
    assert props["StateMachineName"] == f"rankops-{env}-pipeline" and props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}
    (log_group,) = [
        g
        for g in synthesized[env].resources("pipeline", "AWS::Logs::LogGroup").values()
        if "vendedlogs/states" in g["Properties"]["LogGroupName"]
    ]
    assert log_group["Properties"]["RetentionInDays"] == synthesized[env].config.aws.log_retention_days


@pytest.mark.parametrize("env", ENVS)
def test_every_placeholder_in_the_definition_is_substituted(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    props = state_machine(synthesized[env])
    substitutions = props["DefinitionSubstitutions"]
    assert set(RESOURCE_KEYS) <= set(substitutions)
    assert substitutions["Environment"] == env
    assert substitutions["ApprovalRequired"] == ("true" if env == "prod" else "false")
    assert substitutions["EndpointName"] == f"rankops-{env}-ranker"
    used = {key for key in substitutions if "${" + key + "}" in props["DefinitionString"]}
    assert used, "the definition refers to deployed resources through substitutions"


def test_the_definition_is_valid_asl() -> None:
    definition = json.loads(render_definition(list(RESOURCE_KEYS)))
    assert Linter.validate(definition) == []


def test_definition_snapshot() -> None:
    """The rendered definition (with ``${Key}`` placeholders) as deployed; review changes like code.

    After an intended change: ``UPDATE_SNAPSHOTS=1 pytest tests/infra/test_pipeline.py``.
    """
    rendered = render_definition(list(RESOURCE_KEYS)) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(rendered)
    assert SNAPSHOT.read_text() == rendered, "definition changed; see the docstring to update the snapshot"


def test_the_seam_rejects_unknown_substitutions_and_uses_the_placeholder_until_replaced() -> None:
    def typo(resources):  # type: ignore[no-untyped-def]
        return {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${ArtifactBucket}", "End": True}}}

    with pytest.raises(ConfigError, match="ArtifactBucket"):
        render_definition(list(RESOURCE_KEYS), typo)
    render, origin = pipeline_render()
    if not (Path(__file__).resolve().parents[2] / "stepfunctions" / "definition.py").exists():
        assert render is placeholder_render and origin.endswith("placeholder_render")
    else:
        assert origin == "stepfunctions.definition.render"


def test_state_machine_role_is_limited_to_the_pipeline(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    policy = by_suffix(synth.resources("pipeline", "AWS::IAM::Policy"), "StateMachineRoleDefaultPolicy")
    text = json.dumps(policy)
    for resource in ("processing-job/rankops-dev-*", "training-job/rankops-dev-*", "endpoint/rankops-dev-ranker"):
        assert resource in text
    assert "role/rankops-dev-serving-model" in text  # PassRole of the endpoint's model role, by name
    assert "ApprovalsTopic" in text and "FailuresTopic" in text


@pytest.mark.parametrize("env", ENVS)
def test_trigger_rules(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    rules = synth.resources("pipeline", "AWS::Events::Rule")
    weekly = by_suffix(rules, "Weekly")
    assert weekly["Properties"]["ScheduleExpression"] == synth.config.aws.retrain_schedule == "cron(0 3 ? * MON *)"
    drift = by_suffix(rules, "Drift")["Properties"]["EventPattern"]
    assert drift["detail-type"] == ["CloudWatch Alarm State Change"]
    assert drift["detail"] == {"alarmName": [synth.config.alarm_name(ALARM_DRIFT)], "state": {"value": ["ALARM"]}}
    emergency = by_suffix(rules, "Emergency")["Properties"]["EventPattern"]
    assert emergency == {
        "source": ["rankops.ops"],
        "detail-type": [EMERGENCY_DETAIL_TYPE],
        "detail": {"environment": [env]},
    }
    for rule in (weekly, by_suffix(rules, "Drift"), by_suffix(rules, "Emergency")):
        (target,) = rule["Properties"]["Targets"]
        assert "TriggerFunction" in json.dumps(target["Arn"])
    failed = by_suffix(rules, "ExecutionFailed")["Properties"]
    assert failed["EventPattern"]["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert "FailuresTopic" in json.dumps(failed["Targets"])


def test_lambdas_follow_the_handler_contract(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    functions = {
        **synth.resources("pipeline", "AWS::Lambda::Function"),
        **synth.resources("feature-compute", "AWS::Lambda::Function"),
    }
    assert len(functions) >= 2
    for logical_id, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Layers"] == [synth.config.aws.lambda_numpy_layer_arn]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Handler"].startswith("lambdas.") and props["Handler"].endswith(".handler.handler")
        name = props["Handler"].split(".")[1]
        asset = synth.outdir / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
        files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
        handler_files = [f for f in files if f.startswith("lambdas/")]
        assert handler_files == ["lambdas/__init__.py", f"lambdas/{name}/__init__.py", f"lambdas/{name}/handler.py"]
        assert all(f.startswith(("lambdas/", "rankops/")) for f in files), logical_id  # the library, nothing else
        log_group = props["LoggingConfig"]["LogGroup"]
        assert "Ref" in log_group
