"""Local SageMaker jobs follow the container contracts the cloud uses."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest

from rankops.pipeline.engine import LocalTaskFailed
from rankops.pipeline.local_jobs import Buckets, LocalJobs

COPY = (
    "import pathlib, os; base = pathlib.Path(os.environ['RANKOPS_SM_BASE']) / 'opt/ml/processing';"
    "data = (base / 'input/data/rows.txt').read_text();"
    "(base / 'output/result/out.txt').write_text(data.upper() + os.environ['GREETING'])"
)


@pytest.fixture
def jobs(tmp_path: Path) -> LocalJobs:
    (tmp_path / "bucket" / "in").mkdir(parents=True)
    (tmp_path / "bucket" / "in" / "rows.txt").write_text("abc")
    buckets = Buckets({"b": tmp_path / "bucket"})
    train = [
        sys.executable,
        "-c",
        "import json, os, pathlib; hp = json.load(open(pathlib.Path(os.environ['RANKOPS_SM_BASE']) / "
        "'opt/ml/input/config/hyperparameters.json')); ch = pathlib.Path(os.environ['SM_CHANNEL_TRAIN']);"
        "pathlib.Path(os.environ['SM_MODEL_DIR'], 'model.txt').write_text(hp['depth'] + (ch / 'rows.txt').read_text())",
    ]
    return LocalJobs(tmp_path / "home", buckets, tmp_path, commands={"train": train})


ROLE = "arn:aws:iam::123456789012:role/jobs"
S3_IN = {"S3DataType": "S3Prefix", "S3InputMode": "File"}
RESOURCES = {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}}


def processing(command: list[str], seconds: int = 60, name: str = "job-1") -> dict:
    """A complete CreateProcessingJob request (the local handler validates it as the API does)."""
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "ProcessingResources": RESOURCES,
        "AppSpecification": {"ImageUri": "x", "ContainerEntrypoint": command},
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {"S3Uri": "s3://b/in", "LocalPath": "/opt/ml/processing/input/data", **S3_IN},
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {
                        "S3Uri": "s3://b/out/result",
                        "LocalPath": "/opt/ml/processing/output/result",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "Environment": {"GREETING": "!"},
        "StoppingCondition": {"MaxRuntimeInSeconds": seconds},
    }


def test_processing_job_reads_inputs_and_publishes_outputs(jobs: LocalJobs, tmp_path: Path) -> None:
    described = jobs.sagemaker("createProcessingJob", processing(["python3", "-c", COPY]))
    assert described["ProcessingJobStatus"] == "Completed"
    assert (tmp_path / "bucket" / "out" / "result" / "out.txt").read_text() == "ABC!"


def test_failed_and_overdue_jobs_fail_like_sagemaker_reports_it(jobs: LocalJobs) -> None:
    with pytest.raises(LocalTaskFailed) as failed:
        jobs.sagemaker(
            "createProcessingJob", processing(["python3", "-c", "import sys; print('boom'); sys.exit(3)"], name="boom")
        )
    assert failed.value.cause["ExitCode"] == 3 and "boom" in failed.value.cause["FailureReason"]
    with pytest.raises(LocalTaskFailed, match="MaxRuntimeInSeconds"):
        jobs.sagemaker("createProcessingJob", processing(["python3", "-c", "import time; time.sleep(30)"], 1, "slow"))
    with pytest.raises(LocalTaskFailed, match="no data at"):
        jobs.sagemaker(
            "createProcessingJob",
            {
                **processing(["true"], name="no-input"),
                "ProcessingInputs": [
                    {
                        "InputName": "x",
                        "S3Input": {"S3Uri": "s3://b/missing", "LocalPath": "/opt/ml/processing/input/x", **S3_IN},
                    }
                ],
            },
        )


def test_training_job_follows_script_mode(jobs: LocalJobs, tmp_path: Path) -> None:
    described = jobs.sagemaker(
        "createTrainingJob",
        {
            "TrainingJobName": "train-1",
            "RoleArn": ROLE,
            "AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File"},
            "HyperParameters": {"depth": "7"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}},
                }
            ],
            "OutputDataConfig": {"S3OutputPath": "s3://b/models"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    )
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == "s3://b/models/train-1/output/model.tar.gz"
    with tarfile.open(tmp_path / "bucket" / "models" / "train-1" / "output" / "model.tar.gz") as tar:
        assert tar.extractfile("model.txt").read() == b"7abc"  # type: ignore[union-attr]
    assert json.loads(described["HyperParameters"]["depth"]) == 7


def test_requests_the_api_would_refuse_are_refused(jobs: LocalJobs) -> None:
    """SageMaker rejects names over 63 characters and never reuses a job name; neither do local runs."""
    with pytest.raises(LocalTaskFailed, match="longer than 63 characters"):
        jobs.sagemaker("createProcessingJob", processing(["true"], name="j" * 64))
    with pytest.raises(LocalTaskFailed, match="RoleArn"):
        jobs.sagemaker(
            "createProcessingJob", {k: v for k, v in processing(["true"], name="x").items() if k != "RoleArn"}
        )
    jobs.sagemaker("createProcessingJob", processing(["true"], name="once"))
    with pytest.raises(LocalTaskFailed, match="ResourceInUse"):
        jobs.sagemaker("createProcessingJob", processing(["true"], name="once"))


def test_emr_serverless_job_runs_its_entry_point_with_spark_submit(jobs: LocalJobs, tmp_path: Path) -> None:
    """StartJobRun: the entry point from a "bucket", its arguments (s3 URIs of mapped buckets made
    local) and the driver environment from SparkSubmitParameters, as EMR Serverless passes them."""
    (tmp_path / "bucket" / "code").mkdir()
    (tmp_path / "bucket" / "code" / "job.py").write_text(
        "import os, pathlib, sys\n"
        "pathlib.Path(sys.argv[2]).mkdir(parents=True, exist_ok=True)\n"
        "(pathlib.Path(sys.argv[2]) / 'ran.txt').write_text(sys.argv[1] + os.environ['FEATURE_SET'])\n"
    )
    described = jobs.emr_serverless(
        "startJobRun",
        {
            "ApplicationId": "local",
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/emr",
            "Name": "features-1a2b3c4d-0",
            "JobDriver": {
                "SparkSubmit": {
                    "EntryPoint": "s3://b/code/job.py",
                    "EntryPointArguments": ["--env=dev:", "s3://b/out/emr"],
                    "SparkSubmitParameters": "--conf spark.emr-serverless.driverEnv.FEATURE_SET=items",
                }
            },
        },
    )
    assert described["State"] == "SUCCESS"
    assert (tmp_path / "bucket" / "out" / "emr" / "ran.txt").read_text() == "--env=dev:items"
    with pytest.raises(LocalTaskFailed, match="ValidationException"):
        jobs.emr_serverless("startJobRun", {"ApplicationId": "local", "JobDriver": {}})


OMP = (
    "import pathlib, os; base = pathlib.Path(os.environ['RANKOPS_SM_BASE']) / 'opt/ml/processing';"
    "(base / 'output/result/out.txt').write_text(os.environ.get('OMP_WAIT_POLICY', '-'))"
)


def test_a_job_s_openmp_threads_sleep_unless_the_environment_says_otherwise(
    jobs: LocalJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bucket" / "out" / "result" / "out.txt"
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    jobs.sagemaker("createProcessingJob", processing(["python3", "-c", OMP], name="passive"))
    assert out.read_text() == "PASSIVE", "a local job shares the host: waiting OpenMP threads sleep"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    jobs.sagemaker("createProcessingJob", processing(["python3", "-c", OMP], name="active"))
    assert out.read_text() == "ACTIVE", "the environment's own setting wins"
