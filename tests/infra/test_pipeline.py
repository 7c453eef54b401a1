"""The pipeline stack: state machine (logging, X-Ray, substitutions), its Lambdas, its triggers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from statelint.linter import Linter

from infra.config import ALARM_DRIFT
from infra.constructs.pipeline_definition_source import RESOURCE_KEYS, render_definition
from lambdas.retrain_trigger.handler import EMERGENCY_DETAIL_TYPE
from rankops.errors import ConfigError
from rankops.release.endpoint import DEPLOYMENT_POLICY_VARIABLE
from rankops.release.sagemaker import DeploymentPolicy
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


def test_the_seam_rejects_a_definition_using_an_unknown_substitution() -> None:
    with pytest.raises(ConfigError, match="EndpointName"):
        render_definition([k for k in RESOURCE_KEYS if k != "EndpointName"])


@pytest.mark.parametrize("env", ENVS)
def test_cdk_deploys_exactly_the_text_the_local_runner_executes(synthesized, env: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One definition: the template's DefinitionString is the text the local runner substitutes and runs."""
    from rankops.pipeline.local import definition_template, executable_definition, local_resources
    from stepfunctions.definition import substitute
    from tests.conftest import make_settings

    deployed = state_machine(synthesized[env])["DefinitionString"]
    assert deployed == definition_template()
    settings = make_settings(tmp_path)
    assert substitute(deployed, local_resources(settings)) == executable_definition(settings)


def test_state_machine_role_is_limited_to_the_pipeline(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    policy = by_suffix(synth.resources("pipeline", "AWS::IAM::Policy"), "StateMachineRoleDefaultPolicy")
    text = json.dumps(policy)
    for resource in ("processing-job/rankops-dev-*", "training-job/rankops-dev-*", "endpoint/rankops-dev-ranker"):
        assert resource in text
    assert "sagemaker:UpdateEndpoint" not in text, "only the release Lambda changes the endpoint"
    assert "ApprovalsTopic" in text and "FailuresTopic" in text
    release = json.dumps(by_suffix(synth.resources("pipeline", "AWS::IAM::Policy"), "FnReleaseRoleDefaultPolicy"))
    assert "sagemaker:UpdateEndpoint" in release and "role/rankops-dev-serving-model" in release


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


@pytest.mark.parametrize("env", ENVS)
def test_every_environments_definition_passes_statelint(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    """The definition with this environment's substitutions (CloudFormation tokens stand in as strings)."""
    from stepfunctions.definition import substitute

    props = state_machine(synthesized[env])
    values = {k: v if isinstance(v, str) else f"token-{k}" for k, v in props["DefinitionSubstitutions"].items()}
    assert Linter.validate(json.loads(substitute(props["DefinitionString"], values))) == []


def release_function(synth) -> dict:  # type: ignore[no-untyped-def]
    (function,) = [
        f["Properties"]
        for f in synth.resources("pipeline", "AWS::Lambda::Function").values()
        if f["Properties"]["FunctionName"].endswith("-release")
    ]
    return function


@pytest.mark.parametrize("env", ENVS)
def test_releases_deploy_with_the_environments_blue_green_policy(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    """The release Lambda reads DEPLOYMENT_POLICY (the event sets none): the same routing as the
    CloudFormation endpoint of this environment, in DeploymentPolicy's fields."""
    synth = synthesized[env]
    cfg = synth.config.aws.endpoint
    policy = json.loads(release_function(synth)["Environment"]["Variables"][DEPLOYMENT_POLICY_VARIABLE])
    assert DeploymentPolicy(**policy) == DeploymentPolicy(
        traffic_routing=cfg.traffic_routing,
        canary_size_percent=cfg.canary_percent,
        linear_step_percent=cfg.linear_step_percent,
        wait_interval_s=cfg.wait_interval_seconds,
        termination_wait_s=cfg.termination_wait_seconds,
        max_execution_timeout_s=cfg.max_execution_timeout_seconds,
    )
    (endpoint,) = synth.resources("serving", "AWS::SageMaker::Endpoint").values()
    routing = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == policy["traffic_routing"]
    assert {"dev": "ALL_AT_ONCE", "staging": "ALL_AT_ONCE", "prod": "CANARY"}[env] == policy["traffic_routing"]


def test_release_may_use_only_the_endpoints_volume_key(synthesized) -> None:  # type: ignore[no-untyped-def]
    """Endpoint configs name the serving stack's volume key, so SageMaker creates grants on it as the
    release Lambda: CreateGrant (for AWS resources only) and DescribeKey, scoped by the key's alias."""
    synth = synthesized["prod"]
    policy = by_suffix(synth.resources("pipeline", "AWS::IAM::Policy"), "FnReleaseRoleDefaultPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    kms = {st["Action"]: st for st in statements if isinstance(st["Action"], str) and st["Action"].startswith("kms:")}
    assert set(kms) == {"kms:CreateGrant", "kms:DescribeKey"}
    # the one other KMS statement: the artifacts bucket's key, to write the routing document
    (lake_key,) = [st for st in statements if isinstance(st["Action"], list) and "kms:Encrypt" in st["Action"]]
    assert "LakeLakeKey" in json.dumps(lake_key["Resource"])
    (put,) = [st for st in statements if "s3:PutObject" in st["Action"]]
    assert json.dumps(put["Resource"]).endswith('"/release/*"]]}'), "only the routing documents' folder"
    alias = synth.config.endpoint_volume_key_alias
    assert alias == "alias/rankops-prod-endpoint"
    for statement in kms.values():
        assert statement["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": [alias]}
        assert json.dumps(statement["Resource"]).endswith(':key/*"]]}')
    assert kms["kms:CreateGrant"]["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    (key,) = synth.resources("serving", "AWS::KMS::Alias").values()
    assert key["Properties"]["AliasName"] == alias  # the alias the grants name is the volume key's


def test_sagemaker_jobs_write_the_pipeline_folders_and_mlflow_store(synthesized) -> None:  # type: ignore[no-untyped-def]
    """Jobs exchange data under artifacts/pipeline/<execution>/ and log models to MLflow's store
    (artifacts/mlflow/, where the client uploads them itself)."""
    synth = synthesized["dev"]
    policy = by_suffix(synth.resources("pipeline", "AWS::IAM::Policy"), "JobsRoleDefaultPolicy")
    writable = [
        json.dumps(resource)
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if "s3:PutObject" in st["Action"]
        for resource in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
        if "LakeArtifactsBucket" in json.dumps(resource)
    ]
    for prefix in ("pipeline", "mlflow", "models", "jobs"):
        assert any(r.endswith(f'"/{prefix}/*"]]}}') for r in writable), prefix
    assert not any(r.endswith('"/*"]]}') for r in writable)  # never every object of the bucket
