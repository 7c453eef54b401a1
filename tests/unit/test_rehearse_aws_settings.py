"""While a rehearsal world is open, this process's AWS clients (and MLflow's S3 artifact client,
which MLflow caches by its own endpoint setting) reach that world; afterwards the settings are back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rankops.rehearse.world import aws_settings


def test_each_world_gets_mlflow_s3_clients_of_its_own_and_the_settings_come_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow.store.artifact.s3_artifact_repo import _get_s3_client

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_PROFILE", "someone")
    for port in (5001, 5002):  # two worlds one after the other, as two test modules on one worker
        url = f"http://127.0.0.1:{port}"
        with aws_settings(url, "eu-west-1", tmp_path):
            assert os.environ["AWS_ENDPOINT_URL"] == os.environ["MLFLOW_S3_ENDPOINT_URL"] == url
            assert "AWS_PROFILE" not in os.environ
            assert _get_s3_client().meta.endpoint_url == url, "not the previous world's cached client"
    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:1" and os.environ["AWS_PROFILE"] == "someone"
    assert "AWS_ENDPOINT_URL" not in os.environ
