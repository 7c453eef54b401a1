"""Prod durability, read from the synthesized templates: what is retained, protected, encrypted
with our own keys, dead-lettered, and which deletions no workload may make."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from tests.infra.conftest import ENVS, STACKS
from tests.infra.test_iam import as_list, identity_statements


def ref_id(value: Any) -> str:
    """The logical id behind ``{"Fn::GetAtt": [id, "Arn"]}`` or ``{"Ref": id}``."""
    return value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"]


@pytest.mark.parametrize("env", ENVS)
def test_the_tracking_server_is_retained_where_data_is(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    (server,) = synth.resources("mlflow", "AWS::SageMaker::MlflowTrackingServer").values()
    expected = "Retain" if synth.config.retain else "Delete"
    assert server.get("DeletionPolicy") == expected and server.get("UpdateReplacePolicy") == expected
    assert synthesized["prod"].config.retain, "prod keeps its data"


@pytest.mark.parametrize("env", ENVS)
def test_retained_environments_have_termination_protection(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    artifacts = json.loads((synth.outdir / "manifest.json").read_text())["artifacts"]
    for suffix in STACKS:
        properties = artifacts[f"{synth.config.prefix}-{suffix}"]["properties"]
        assert bool(properties.get("terminationProtection")) is synth.config.retain, suffix


@pytest.mark.parametrize("env", ENVS)
def test_every_log_group_uses_a_rotated_customer_managed_key_logs_may_use(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    seen = 0
    for suffix in STACKS:
        keys = synth.resources(suffix, "AWS::KMS::Key")
        for logical_id, group in synth.resources(suffix, "AWS::Logs::LogGroup").items():
            seen += 1
            key_ref = group["Properties"].get("KmsKeyId")
            assert key_ref, f"{suffix}/{logical_id} has no customer-managed key"
            key = keys[ref_id(key_ref)]["Properties"]
            assert key["EnableKeyRotation"] is True
            principals = [s.get("Principal", {}).get("Service") for s in key["KeyPolicy"]["Statement"]]
            assert any(p and "logs." in json.dumps(p) for p in principals), f"{suffix}: logs may not use the key"
    assert seen >= 8  # Lambdas, the state machine, EMR, CodeBuild, Redis slow log, VPC flow logs, endpoint


@pytest.mark.parametrize("env", ENVS)
def test_sagemaker_jobs_encrypt_volumes_and_outputs_with_our_keys(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    (machine,) = synth.resources("pipeline", "AWS::StepFunctions::StateMachine").values()
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    keys = synth.resources("pipeline", "AWS::KMS::Key")
    volume_key = ref_id(substitutions["JobVolumeKmsKeyArn"])
    assert keys[volume_key]["Properties"]["EnableKeyRotation"] is True
    assert "Fn::ImportValue" in substitutions["JobOutputKmsKeyArn"], "the lake's artifacts-bucket key"
    definition = machine["Properties"]["DefinitionString"]
    assert isinstance(definition, str), "the definition is deployed as text with ${Key} substitutions"
    jobs = [s for s in json.loads(definition)["States"].values() if ":::sagemaker:create" in s.get("Resource", "")]
    assert len(jobs) >= 3
    for job in jobs:
        params = job["Parameters"]
        resources = params.get("ProcessingResources", {}).get("ClusterConfig") or params["ResourceConfig"]
        assert resources["VolumeKmsKeyId"] == "${JobVolumeKmsKeyArn}"
        outputs = params.get("ProcessingOutputConfig") or params.get("OutputDataConfig")
        assert outputs is None or outputs["KmsKeyId"] == "${JobOutputKmsKeyArn}"
    assert sum("OutputDataConfig" in j["Parameters"] or "ProcessingOutputConfig" in j["Parameters"] for j in jobs) >= 3
    role_actions = {
        a
        for where, statement in identity_statements(synth)
        if where.startswith("pipeline/Jobs")
        for a in as_list(statement["Action"])
        if volume_key in json.dumps(statement.get("Resource"))
    }
    assert {"kms:CreateGrant", "kms:Encrypt", "kms:Decrypt"} <= role_actions


@pytest.mark.parametrize("env", ENVS)
def test_no_workload_may_delete_an_object_version(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    for where, statement in identity_statements(synthesized[env]):
        for action in as_list(statement["Action"]):
            assert not fnmatch.fnmatchcase("s3:DeleteObjectVersion", action), f"{where}: {action}"


@pytest.mark.parametrize("env", ENVS)
def test_every_eventbridge_target_has_a_watched_dead_letter_queue(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    targets = 0
    for suffix in STACKS:
        queues = synth.resources(suffix, "AWS::SQS::Queue")
        alarmed = {
            ref_id(d["Value"])
            for alarm in synth.resources(suffix, "AWS::CloudWatch::Alarm").values()
            for d in alarm["Properties"].get("Dimensions", [])
            if d["Name"] == "QueueName"
        }
        for rule in synth.resources(suffix, "AWS::Events::Rule").values():
            for target in rule["Properties"]["Targets"]:
                targets += 1
                queue_id = ref_id(target["DeadLetterConfig"]["Arn"])
                assert queues[queue_id]["Properties"]["SqsManagedSseEnabled"] is True
                assert queue_id in alarmed, f"{suffix}: nobody hears about undelivered events"
    assert targets >= 6
