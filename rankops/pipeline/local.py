"""Run the pipeline on this machine: the deployed definition, local resources, local jobs.

The definition text is the one CDK deploys (``stepfunctions.definition.render_text`` with
``${Key}`` placeholders); here the placeholders get local values: buckets named
``rankops-local-<zone>`` that stand for the lake's folders, the container image's programs
run from this checkout, the Lambdas' real handlers, the endpoint ``local:<RANKOPS_HOME>``
(the local inference server). moto's Step Functions interpreter executes it
(:mod:`rankops.pipeline.engine`).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rankops.config import Settings
from rankops.documents import LOCAL_BUCKETS_ENV
from rankops.errors import RankopsError
from rankops.lake import ZONES, Lake
from rankops.pipeline import runner
from rankops.pipeline.local_jobs import Buckets, LocalJobs
from stepfunctions.definition import LAMBDAS, RESOURCE_KEYS, render_text, substitute

REPO = Path(__file__).resolve().parents[2]
CODE_BUCKET = "rankops-local-code"


def definition_template() -> str:
    """The definition exactly as deployed (placeholders unfilled)."""
    return render_text({key: "${" + key + "}" for key in RESOURCE_KEYS})


def local_buckets(settings: Settings) -> Buckets:
    lake = Lake.from_settings(settings)
    folders = {f"rankops-local-{zone}": Path(lake.zone_uri(zone)) for zone in ZONES}  # type: ignore[arg-type]
    folders[CODE_BUCKET] = REPO
    return Buckets(folders)


def local_resources(settings: Settings) -> dict[str, str]:
    """A value for every ``${Key}`` of the definition, pointing at this machine."""
    arn = "arn:aws:{}:eu-west-1:123456789012:{}"
    values = {
        "Environment": settings.env,
        "FeatureSet": settings.features.feature_set,
        "ApprovalRequired": "true" if settings.pipeline.approval_required else "false",
        "FailuresTopicArn": arn.format("sns", "rankops-local-failures"),
        "ApprovalsTopicArn": arn.format("sns", "rankops-local-approvals"),
        "ImageUri": "rankops:local",
        "SageMakerJobRoleArn": arn.format("iam", "role/rankops-local-jobs").replace("eu-west-1", ""),
        "JobVolumeKmsKeyArn": arn.format("kms", "key/rankops-local-job-volumes"),
        "JobOutputKmsKeyArn": arn.format("kms", "key/rankops-local-lake"),
        "TrainingInstanceType": "local",
        "ProcessingInstanceType": "local",
        "JobSubnetIds": "local",
        "JobSecurityGroupId": "local",
        "MlflowTrackingServerArn": settings.mlflow_tracking_uri(),
        "EmrApplicationId": "local",
        "EmrJobRoleArn": arn.format("iam", "role/rankops-local-emr").replace("eu-west-1", ""),
        "EmrEntryPoint": f"s3://{CODE_BUCKET}/emr_jobs/build_features.py",
        "EndpointName": f"local:{settings.home}",
        "ServingModelRoleArn": arn.format("iam", "role/rankops-local-serving").replace("eu-west-1", ""),
        "EndpointInstanceType": "local",
        "RollbackAlarmNames": "",
        "ServingSecurityGroupId": "local",
        "DataCaptureUri": "none",  # the local server writes the feedback log to the lake
        **{f"{zone.capitalize()}Bucket": f"rankops-local-{zone}" for zone in ZONES},
        **{f"LambdaArn_{name}": name for name in LAMBDAS},
    }
    missing = set(RESOURCE_KEYS) - set(values)
    if missing:
        raise RankopsError(f"no local value for pipeline resources {sorted(missing)}")
    return values


def _window(definition: dict[str, Any], start: str | None, until: str | None) -> dict[str, Any]:
    """Start at ``start`` and/or end after ``until`` (top-level states; for re-running a part)."""
    states = definition["States"]
    for name in (start, until):
        if name is not None and name not in states:
            raise RankopsError(f"no state {name!r} in the pipeline; states: {', '.join(states)}")
    if start is not None:
        definition["StartAt"] = start
    if until is not None:
        state = states[until]
        if state["Type"] in ("Choice", "Succeed", "Fail"):
            raise RankopsError(
                f"--until needs a Task, Pass, Wait, Map or Parallel state, {until!r} is a {state['Type']}"
            )
        state.pop("Next", None)
        state["End"] = True
    return definition


def resume_input(home: Path, state: str) -> dict[str, Any]:
    """The input ``state`` received in the latest saved execution that reached it (for ``--from``)."""
    for record in runner.load_history(home, last=50):
        for event in record.get("events", []):
            details = event.get("stateEnteredEventDetails", {})
            if details.get("name") == state:
                return dict(json.loads(details["input"]))
    raise RankopsError(f"no saved execution reached {state!r}; run the pipeline from the start first")


@contextmanager
def _local_buckets_env(buckets: Buckets) -> Any:
    """Documents read by in-process Lambda handlers resolve the local buckets (see rankops.documents)."""
    before = os.environ.get(LOCAL_BUCKETS_ENV)
    os.environ[LOCAL_BUCKETS_ENV] = json.dumps({b: str(p) for b, p in buckets.folders.items()})
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(LOCAL_BUCKETS_ENV, None)
        else:
            os.environ[LOCAL_BUCKETS_ENV] = before


def executable_definition(settings: Settings, start: str | None = None, until: str | None = None) -> str:
    """The text the local runner executes: the deployed template with this machine's values
    substituted (and, for ``--from``/``--until``, the start or end moved)."""
    text = substitute(definition_template(), local_resources(settings))
    if start or until:
        text = json.dumps(_window(json.loads(text), start, until))
    return text


def run_local(
    settings: Settings,
    execution_input: Mapping[str, Any],
    *,
    start: str | None = None,
    until: str | None = None,
    on_state: Callable[[runner.StateRecord], None] | None = None,
    handlers: Mapping[str, Any] | None = None,
    timeout_s: float = 3600,
    approver: runner.Approver | None = None,
) -> runner.ExecutionRecord:
    """Execute the pipeline locally; the record is also saved under ``RANKOPS_HOME/pipeline``.
    Approval requests (``pipeline.approval_required``) go to ``approver``; without one they are
    rejected and the release rolls back, as an unanswered approval would."""
    buckets = local_buckets(settings)
    text = executable_definition(settings, start, until)
    if start:  # the state's recorded input, with this run's options applied to its run settings
        resumed = resume_input(settings.home, start)
        resumed["run"] = {**resumed.get("run", {}), **dict(execution_input)}
        if "job_id" in resumed:  # new jobs get new names: SageMaker never reuses one
            resumed["job_id"] = uuid.uuid4().hex[:8]
        if "approval_required" in resumed:  # deployment configuration: today's, not the recorded run's
            resumed["approval_required"] = local_resources(settings)["ApprovalRequired"]
        execution_input = resumed
    jobs = LocalJobs(
        settings.home,
        buckets,
        REPO,
        commands={"train": [str(Path(sys.executable).with_name("train"))]},
        base_env={"RANKOPS_HOME": str(settings.home), "RANKOPS_CONFIG": str(REPO / "rankops.toml")},
    )
    local_handlers = {"sagemaker": jobs.sagemaker, "emr-serverless": jobs.emr_serverless, **(handlers or {})}
    resources = runner.LocalResources(
        lambdas={name: f"lambdas.{name}.handler.handler" for name in LAMBDAS},
        topics=("rankops-local-failures", "rankops-local-approvals"),
    )
    with _local_buckets_env(buckets):
        record = runner.run_definition(
            text,
            execution_input,
            local_handlers,
            resources,
            on_state=on_state,
            timeout_s=timeout_s,
            template_sha=runner.sha(definition_template()),
            approver=approver,
        )
    runner.save(settings.home, record)
    return record
