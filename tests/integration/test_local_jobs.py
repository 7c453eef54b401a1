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


def processing(command: list[str], seconds: int = 60) -> dict:
    return {
        "ProcessingJobName": "job-1",
        "AppSpecification": {"ImageUri": "x", "ContainerEntrypoint": command},
        "ProcessingInputs": [
            {"InputName": "data", "S3Input": {"S3Uri": "s3://b/in", "LocalPath": "/opt/ml/processing/input/data"}}
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {"S3Uri": "s3://b/out/result", "LocalPath": "/opt/ml/processing/output/result"},
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
        jobs.sagemaker("createProcessingJob", processing(["python3", "-c", "import sys; print('boom'); sys.exit(3)"]))
    assert failed.value.cause["ExitCode"] == 3 and "boom" in failed.value.cause["FailureReason"]
    with pytest.raises(LocalTaskFailed, match="MaxRuntimeInSeconds"):
        jobs.sagemaker("createProcessingJob", processing(["python3", "-c", "import time; time.sleep(30)"], 1))
    with pytest.raises(LocalTaskFailed, match="no data at"):
        jobs.sagemaker(
            "createProcessingJob",
            {
                **processing(["true"]),
                "ProcessingInputs": [
                    {
                        "InputName": "x",
                        "S3Input": {"S3Uri": "s3://b/missing", "LocalPath": "/opt/ml/processing/input/x"},
                    }
                ],
            },
        )


def test_training_job_follows_script_mode(jobs: LocalJobs, tmp_path: Path) -> None:
    described = jobs.sagemaker(
        "createTrainingJob",
        {
            "TrainingJobName": "train-1",
            "HyperParameters": {"depth": "7"},
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/in"}}}],
            "OutputDataConfig": {"S3OutputPath": "s3://b/models"},
        },
    )
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == "s3://b/models/train-1/output/model.tar.gz"
    with tarfile.open(tmp_path / "bucket" / "models" / "train-1" / "output" / "model.tar.gz") as tar:
        assert tar.extractfile("model.txt").read() == b"7abc"  # type: ignore[union-attr]
    assert json.loads(described["HyperParameters"]["depth"]) == 7
