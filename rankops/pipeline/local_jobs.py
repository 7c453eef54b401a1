"""Local stand-ins for SageMaker and EMR Serverless jobs, driven by the real API requests.

The state machine sends ``CreateProcessingJob`` / ``CreateTrainingJob`` / ``StartJobRun``
parameters; these handlers lay the SageMaker container contract out under
``RANKOPS_HOME/sagemaker/<job>/opt/ml/...`` (inputs linked from the local "buckets",
hyperparameters written as strings, ``SM_*`` variables), run the container's own command
in a subprocess with a timeout, publish outputs back to the "buckets" and answer with a
Describe-like document. A failed job raises :class:`LocalTaskFailed`, which the engine turns
into ``States.TaskFailed`` with that document as the cause, as AWS does.

"Buckets" are a mapping from S3 bucket name to a local folder; environment values and
arguments that are ``s3://`` URIs of mapped buckets are rewritten to those folders, so a
job reads and writes the local lake exactly where AWS would use S3.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rankops.pipeline.engine import LocalTaskFailed

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:{kind}/{name}"
LOG_TAIL = 3000
# A SageMaker instance gives a job its own cores; here a job shares a small host with the pipeline,
# the endpoint's servers and other runs. LightGBM's OpenMP threads then spin-wait at every barrier
# for a thread the OS has descheduled: a training job's 5-66 boosting rounds took 0.2-24 s in one
# rehearsal, the same model (byte for byte) ~10x faster with waiting threads that sleep. Sleeping
# waits change how long a job takes, never what it computes; a value set in this environment wins.
HOST_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class Buckets:
    """S3 bucket name -> local folder."""

    folders: Mapping[str, Path]

    def local(self, uri: str) -> Path:
        if not uri.startswith("s3://"):
            return Path(uri.removeprefix("file://"))
        bucket, _, key = uri[len("s3://") :].partition("/")
        if bucket not in self.folders:
            raise LocalTaskFailed(
                {"FailureReason": f"bucket {bucket!r} has no local folder (known: {sorted(self.folders)})"}
            )
        return Path(self.folders[bucket]) / key

    def rewrite(self, value: str) -> str:
        """An ``s3://`` URI of a mapped bucket -> its local path; anything else unchanged."""
        if value.startswith("s3://") and value[len("s3://") :].partition("/")[0] in self.folders:
            return str(self.local(value))
        return value

    def fetch(self, uri: str, target: Path) -> None:
        """A job input at ``target`` (S3Prefix semantics: a prefix naming one object lands as that
        file inside ``target``)."""
        source = self.local(uri)
        _link(source, target / source.name if source.is_file() else target)

    def store(self, source: Path, uri: str) -> None:
        """A job output (a folder or one file) at ``uri``."""
        _publish(source, self.local(uri))


class JobStorage(Protocol):
    """Where jobs read inputs and write outputs: :class:`Buckets` (local folders) or an S3 store."""

    def rewrite(self, value: str) -> str: ...

    def fetch(self, uri: str, target: Path) -> None: ...

    def store(self, source: Path, uri: str) -> None: ...


def _link(source: Path, target: Path) -> None:
    """Make ``source`` (a folder or one file) appear at ``target``, as SageMaker's download would."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists():
        raise LocalTaskFailed({"FailureReason": f"ClientError: no data at {source} (the S3 input of this job)"})
    target.symlink_to(source.resolve(), target_is_directory=source.is_dir())


def _publish(source: Path, destination: Path) -> None:
    """Replace ``destination`` with a copy of ``source`` (copy aside, then swap)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(destination.name + f".tmp-{time.time_ns()}")
    shutil.copytree(source, staging) if source.is_dir() else shutil.copy2(source, staging)
    if destination.exists():
        old = destination.with_name(destination.name + f".old-{time.time_ns()}")
        destination.rename(old)
        staging.rename(destination)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        staging.rename(destination)


@functools.cache
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def validate_request(service: str, action: str, params: Mapping[str, Any]) -> None:
    """Reject a request the real API would reject: botocore's checks (types, required members,
    minimum lengths) plus the maximum lengths and patterns of top-level names, which the
    service enforces (a 64-character job name fails in AWS, so it fails here)."""
    from botocore.validate import ParamValidator

    operation = _service_model(service).operation_model(action[0].upper() + action[1:])
    members = operation.input_shape.members
    if all(m[:1].islower() for m in members):  # a camelCase API (EMR Serverless): Step Functions takes
        params = {_camel(k): _camel_keys(v) for k, v in params.items()}  # PascalCase and adds the token
        if "clientToken" in members:
            params.setdefault("clientToken", "step-functions-idempotency-token")
    report = ParamValidator().validate(dict(params), operation.input_shape)
    problems = [report.generate_report()] if report.has_errors() else []
    for member, value in params.items():
        shape = operation.input_shape.members.get(member)
        if shape is None or not isinstance(value, str):
            continue
        limit, pattern = shape.metadata.get("max"), shape.metadata.get("pattern")
        if limit is not None and len(value) > limit:
            problems.append(f"{member} {value!r} is longer than {limit} characters")
        if pattern and not re.fullmatch(pattern.strip("^$"), value):
            problems.append(f"{member} {value!r} does not match {pattern}")
    if problems:
        raise LocalTaskFailed({"FailureReason": f"ValidationException ({service}:{action}): " + "; ".join(problems)})


class LocalJobs:
    """Runs SageMaker processing/training jobs and EMR Serverless job runs on this machine."""

    def __init__(
        self,
        home: Path,
        buckets: JobStorage,
        repo: Path,
        commands: Mapping[str, list[str]],
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.buckets = buckets
        self.repo = repo
        self.commands = commands  # container program ("train", "serve", ...) -> local command
        self.base_env = dict(base_env or {})

    # -- shared ---------------------------------------------------------------------------
    def _command(self, argv: list[str]) -> list[str]:
        """A container command run locally: ``python`` is this interpreter, programs map via ``commands``."""
        if not argv:
            raise LocalTaskFailed({"FailureReason": "the job has no command to run"})
        head, rest = argv[0], argv[1:]
        if head in self.commands:
            return [*self.commands[head], *rest]
        if Path(head).name.startswith("python"):
            return [sys.executable, *rest]
        return argv

    def _run(self, kind: str, name: str, argv: list[str], env: Mapping[str, str], base: Path, timeout_s: int) -> None:
        log = base / "job.log"
        environ = {
            **HOST_DEFAULTS,
            **os.environ,
            **self.base_env,
            **{k: self.buckets.rewrite(v) for k, v in env.items()},
            "RANKOPS_SM_BASE": str(base),
        }
        command = [self.buckets.rewrite(a) for a in self._command(argv)]
        with log.open("wb") as out:
            try:
                proc = subprocess.run(  # noqa: S603 - the job's own container command
                    command,
                    cwd=self.repo,
                    env=environ,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise LocalTaskFailed(
                    {
                        f"{kind}Status": "Failed",
                        f"{kind}Name": name,
                        "FailureReason": f"MaxRuntimeInSeconds ({timeout_s}s) exceeded; log {log}",
                    }
                ) from None
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-LOG_TAIL:]
            raise LocalTaskFailed(
                {
                    f"{kind}Status": "Failed",
                    f"{kind}Name": name,
                    "ExitCode": proc.returncode,
                    "FailureReason": f"AlgorithmError: exit code {proc.returncode}\n{tail}",
                    "Log": str(log),
                }
            )

    def _base(self, kind: str, name: str, *, unique: bool) -> Path:
        base = self.home / "sagemaker" / kind / name
        if base.exists():
            if unique:  # SageMaker never reuses a job name, not even a failed job's
                raise LocalTaskFailed({"FailureReason": f"ResourceInUse: a {kind} job named {name!r} already exists"})
            shutil.rmtree(base)
        base.mkdir(parents=True)
        return base

    # -- SageMaker --------------------------------------------------------------------------
    def sagemaker(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if action in ("createProcessingJob", "createTrainingJob"):
            validate_request("sagemaker", action, params)
        if action == "createProcessingJob":
            return self.processing(params)
        if action == "createTrainingJob":
            return self.training(params)
        if action == "describeEndpoint":  # the endpoint the release Lambda drives (local, or SageMaker via boto3)
            from rankops.release.endpoint import open_endpoint

            name = str(params["EndpointName"])
            return {"EndpointName": name, **open_endpoint(name).describe()}
        raise LocalTaskFailed({"FailureReason": f"sagemaker:{action} has no local implementation"})

    def processing(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ProcessingJobName"]
        base = self._base("processing", name, unique=True)
        for item in params.get("ProcessingInputs", []):
            s3 = item["S3Input"]
            self.buckets.fetch(s3["S3Uri"], base / s3["LocalPath"].lstrip("/"))
        outputs = params.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            (base / item["S3Output"]["LocalPath"].lstrip("/")).mkdir(parents=True, exist_ok=True)
        app = params["AppSpecification"]
        argv = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        timeout = int(params.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 3600))
        started = time.time()
        self._run("ProcessingJob", name, argv, params.get("Environment", {}), base, timeout)
        for item in outputs:
            s3 = item["S3Output"]
            self.buckets.store(base / s3["LocalPath"].lstrip("/"), s3["S3Uri"])
        return {
            "ProcessingJobName": name,
            "ProcessingJobArn": ARN.format(kind="processing-job", name=name),
            "ProcessingJobStatus": "Completed",
            "ProcessingStartTime": started,
            "ProcessingEndTime": time.time(),
            "ProcessingOutputConfig": params.get("ProcessingOutputConfig", {}),
            "Environment": params.get("Environment", {}),
        }

    def training(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TrainingJobName"]
        base = self._base("training", name, unique=True)
        opt_ml = base / "opt" / "ml"
        env = dict(params.get("Environment", {}))
        channels = []
        for channel in params.get("InputDataConfig", []):
            ch = channel["ChannelName"]
            self.buckets.fetch(channel["DataSource"]["S3DataSource"]["S3Uri"], opt_ml / "input" / "data" / ch)
            env[f"SM_CHANNEL_{ch.upper()}"] = str(opt_ml / "input" / "data" / ch)
            channels.append(ch)
        hyper = {k: str(v) for k, v in params.get("HyperParameters", {}).items()}
        (opt_ml / "input" / "config").mkdir(parents=True, exist_ok=True)
        (opt_ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyper))
        for folder in ("model", "output/data"):
            (opt_ml / folder).mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "SM_MODEL_DIR": str(opt_ml / "model"),
                "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
                "SM_CHANNELS": json.dumps(channels),
                "SM_HPS": json.dumps(hyper),
                "TRAINING_JOB_NAME": name,
            }
        )
        timeout = int(params.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 3600))
        started = time.time()
        self._run("TrainingJob", name, ["train"], env, base, timeout)
        output_uri = params["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output/model.tar.gz"
        archive = base / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted((opt_ml / "model").iterdir()):
                tar.add(path, arcname=path.name)
        self.buckets.store(archive, output_uri)
        return {
            "TrainingJobName": name,
            "TrainingJobArn": ARN.format(kind="training-job", name=name),
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "TrainingStartTime": started,
            "TrainingEndTime": time.time(),
            "ModelArtifacts": {"S3ModelArtifacts": output_uri},
            "HyperParameters": hyper,
        }

    # -- EMR Serverless -----------------------------------------------------------------------
    def emr_serverless(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if action != "startJobRun":
            raise LocalTaskFailed({"FailureReason": f"emr-serverless:{action} has no local implementation"})
        validate_request("emr-serverless", action, params)
        name = params.get("Name") or f"job-run-{time.time_ns()}"
        base = self._base("emr", name, unique=False)
        submit = params["JobDriver"]["SparkSubmit"]
        entry = self.buckets.rewrite(submit["EntryPoint"])
        spark_submit = Path(sys.executable).with_name("spark-submit")
        argv = [
            str(spark_submit),
            "--master",
            "local[2]",
            "--conf",
            "spark.ui.enabled=false",
            entry,
            *submit.get("EntryPointArguments", []),
        ]
        import pyspark

        # spark-submit finds Spark and the driver's Python through these (EMR's image has them set)
        env = {"SPARK_HOME": str(Path(pyspark.__file__).parent), "PYSPARK_PYTHON": sys.executable}
        for part in submit.get("SparkSubmitParameters", "").split("--conf"):
            key, _, value = part.strip().partition("=")
            if key.startswith("spark.emr-serverless.driverEnv."):
                env[key[len("spark.emr-serverless.driverEnv.") :]] = value.strip()
        timeout = int(params.get("ExecutionTimeoutMinutes", 60)) * 60
        self._run("JobRun", name, argv, env, base, timeout)
        return {"ApplicationId": params.get("ApplicationId"), "JobRunId": name, "Name": name, "State": "SUCCESS"}
