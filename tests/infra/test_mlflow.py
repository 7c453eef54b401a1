"""SageMaker managed MLflow: the tracking server, its artifact store and its role."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import ENVS
from tests.infra.test_iam import as_list


@pytest.mark.parametrize("env", ENVS)
def test_tracking_server(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    (server,) = synth.resources("mlflow", "AWS::SageMaker::MlflowTrackingServer").values()
    props = server["Properties"]
    assert props["TrackingServerName"] == f"rankops-{env}-mlflow"
    assert props["TrackingServerSize"] == ("Medium" if env == "prod" else "Small")
    assert props["MlflowVersion"] == synth.config.aws.mlflow.mlflow_version
    assert props["AutomaticModelRegistration"] is False
    assert "LakeArtifactsBucket" in json.dumps(props["ArtifactStoreUri"]) and "/mlflow" in json.dumps(
        props["ArtifactStoreUri"]
    )


def test_server_role_touches_only_the_mlflow_prefix(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    (policy,) = synth.resources("mlflow", "AWS::IAM::Policy").values()
    object_resources = [
        json.dumps(r)
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        for r in as_list(s["Resource"])
        if "LakeArtifactsBucket" in json.dumps(r) and "/" in json.dumps(r)
    ]
    assert object_resources and all("/mlflow/*" in r for r in object_resources)
