"""The Lambdas' AWS calls, against moto: nothing is deployed, every call is a real boto3 call.

``start_feature_job`` (EMR Serverless + CloudWatch) and ``retrain_trigger`` (Step Functions +
SNS) are exercised through their ``handler`` entry points with the environment CDK gives them.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emrserverless.models import emrserverless_backends

from lambdas.retrain_trigger import handler as trigger
from lambdas.start_feature_job import handler as starter
from rankops.features import runs
from rankops.pipeline import retrain
from rankops.pipeline.engine import MOTO_CONFIG, installed
from tests.deployed import deployed_definition, run_state

REGION = "eu-west-1"
JOB_ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/rankops-dev-feature-job"


@pytest.fixture
def emr_app(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    emr = boto3.client("emr-serverless", region_name=REGION)
    app_id = emr.create_application(name="rankops-dev-features", releaseLabel="emr-7.9.0", type="SPARK")[
        "applicationId"
    ]
    # moto 5.2.5 answers ListJobRuns on an application without runs with ResourceNotFound (AWS returns []).
    emrserverless_backends[DEFAULT_ACCOUNT_ID][REGION].job_runs.setdefault(app_id, [])
    for name, value in {
        "APPLICATION_ID": app_id,
        "JOB_ROLE_ARN": JOB_ROLE,
        "ENTRY_POINT": "s3://artifacts/emr/0.1.0/build_features.py",
        "ENTRY_POINT_ARGUMENTS": json.dumps(["--env", "dev"]),
        "SPARK_SUBMIT_PARAMETERS": "--conf spark.executor.cores=2",
        "METRICS_NAMESPACE": "rankops",
        "RANKOPS_ENV": "dev",
    }.items():
        monkeypatch.setenv(name, value)
    return app_id


def runs_of(app_id: str) -> list[dict]:
    return boto3.client("emr-serverless", region_name=REGION).list_job_runs(applicationId=app_id)["jobRuns"]


def set_state(app_id: str, state: str) -> None:
    for run in emrserverless_backends[DEFAULT_ACCOUNT_ID][REGION].job_runs[app_id]:
        run.state = state


def freshness_points() -> list[dict]:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(UTC)
    return cloudwatch.get_metric_statistics(
        Namespace="rankops",
        MetricName=runs.FRESHNESS_METRIC,
        Dimensions=[{"Name": "Environment", "Value": "dev"}],
        StartTime=now - timedelta(days=8),
        EndTime=now + timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]


def test_starter_starts_one_run_per_hour_and_reports_freshness(emr_app: str) -> None:
    result = starter.handler({"id": "e-1", "time": "2026-11-03T13:00:07Z"}, None)
    assert result["started"] is True and result["name"] == "features-20261103T1300"
    (run,) = runs_of(emr_app)
    detail = boto3.client("emr-serverless", region_name=REGION).get_job_run(applicationId=emr_app, jobRunId=run["id"])[
        "jobRun"
    ]
    submit = detail["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == "s3://artifacts/emr/0.1.0/build_features.py"
    assert submit["entryPointArguments"] == ["--env", "dev"]
    assert detail["executionRole"] == JOB_ROLE
    assert freshness_points(), "the freshness metric is published on every invocation"


def test_starter_skips_while_a_run_is_active(emr_app: str) -> None:
    starter.handler({"time": "2026-11-03T13:00:00Z"}, None)
    set_state(emr_app, "RUNNING")
    result = starter.handler({"time": "2026-11-03T14:00:00Z"}, None)
    assert result["started"] is False and result["active"] == runs_of(emr_app)[0]["id"]
    assert len(runs_of(emr_app)) == 1
    set_state(emr_app, "SUCCESS")
    assert starter.handler({"time": "2026-11-03T15:00:00Z"}, None)["started"] is True
    assert len(runs_of(emr_app)) == 2


def test_freshness_lag_is_measured_from_the_last_success(emr_app: str) -> None:
    emr = boto3.client("emr-serverless", region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    settings = runs.JobSettings.from_environ(
        {
            "APPLICATION_ID": emr_app,
            "JOB_ROLE_ARN": JOB_ROLE,
            "ENTRY_POINT": "s3://a/b.py",
            "METRICS_NAMESPACE": "rankops",
            "RANKOPS_ENV": "dev",
        }
    )
    runs.start_hourly(settings, emr, cloudwatch, {}, datetime.now(UTC))
    (run,) = runs_of(emr_app)
    later = run["createdAt"] + timedelta(hours=5)
    assert runs.freshness_lag_minutes(emr, settings, later) == pytest.approx(300)
    set_state(emr_app, "FAILED")  # a failed run does not count as fresh: lag falls back to the application age
    assert runs.freshness_lag_minutes(emr, settings, later) >= 0


def test_the_starter_skips_while_the_pipeline_builds_features(emr_app: str, synthesized, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Seam 8: the deployed BuildFeatures state (its run name resolved by the interpreter) starts a
    run in moto's EMR Serverless; while it runs, the hourly starter must not start a second writer."""
    definition = deployed_definition(synthesized["dev"].template("pipeline"))
    emr = boto3.client("emr-serverless", region_name=REGION)

    def start_job_run(action: str, params: dict) -> dict:  # type: ignore[type-arg]
        assert action == "startJobRun"
        run = emr.start_job_run(applicationId=emr_app, executionRoleArn=JOB_ROLE, name=params["Name"],
                                jobDriver={"sparkSubmit": {"entryPoint": "s3://a/b.py"}})  # fmt: skip
        return {"State": "RUNNING", "JobRunId": run["jobRunId"]}

    with mock_aws(config=MOTO_CONFIG), installed({"emr-serverless": start_job_run}):
        state = {"job_id": "1a2b3c4d", "run": {"env": "dev"}}
        run_state(definition["States"]["BuildFeatures"], "BuildFeatures", state)
    (pipeline_run,) = runs_of(emr_app)
    set_state(emr_app, "RUNNING")
    result = starter.handler({"time": "2026-11-03T13:00:00Z"}, None)
    assert result["started"] is False and result["active"] == pipeline_run["id"], pipeline_run["name"]


def test_starter_names_a_missing_variable() -> None:
    with pytest.raises(KeyError, match="APPLICATION_ID"):
        runs.JobSettings.from_environ({"JOB_ROLE_ARN": "x"})


def trigger_environment(synth) -> dict:  # type: ignore[no-untyped-def]
    """The retrain trigger's Lambda environment as synthesized (values may be Ref/ImportValue tokens)."""
    (function,) = [
        r for r in synth.resources("pipeline", "AWS::Lambda::Function").values()
        if r["Properties"]["Handler"] == "lambdas.retrain_trigger.handler.handler"
    ]  # fmt: skip
    return function["Properties"]["Environment"]["Variables"]


def _deployed(synth, token: dict) -> dict:  # type: ignore[no-untyped-def]
    """The resource a Ref (pipeline stack) or an ImportValue (an export of another stack) points at."""
    if "Ref" in token:
        return synth.template("pipeline")["Resources"][token["Ref"]]
    template = synth.template(token["Fn::ImportValue"].split(":", 1)[0].removeprefix(f"{synth.config.prefix}-"))
    (output,) = [o for o in template["Outputs"].values() if o.get("Export", {}).get("Name") == token["Fn::ImportValue"]]
    return template["Resources"][output["Value"]["Ref"]]


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch, synthesized) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The state machine and approvals topic the deployed trigger is wired to (names from the
    synthesized templates), created in moto, and the trigger's environment with their ARNs."""
    synth = synthesized["dev"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    created = {}
    for name, value in trigger_environment(synth).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
            continue
        resource = _deployed(synth, value)
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            arn = sfn.create_state_machine(
                name=resource["Properties"]["StateMachineName"],
                definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
                roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/sfn",
            )["stateMachineArn"]
        else:
            assert resource["Type"] == "AWS::SNS::Topic", name
            arn = sns.create_topic(Name=resource["Properties"]["TopicName"])["TopicArn"]
        created[resource["Type"]] = arn
        monkeypatch.setenv(name, arn)
    topic = created["AWS::SNS::Topic"]
    queue = sqs.create_queue(QueueName="approvals-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return {"machine": created["AWS::StepFunctions::StateMachine"], "queue": queue}


def executions(machine: str) -> list[dict]:
    return boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=machine)["executions"]


def inbox(queue: str) -> list[str]:
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [m["Body"] for m in messages.get("Messages", [])]


def stop_all(machine: str) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for execution in executions(machine):
        if execution["status"] == "RUNNING":
            sfn.stop_execution(executionArn=execution["executionArn"])


SCHEDULED = {"id": "sched-1", "detail-type": "Scheduled Event", "time": "2026-11-02T03:00:00Z", "detail": {}}
DRIFT = {
    "id": "alarm-1",
    "detail-type": "CloudWatch Alarm State Change",
    "time": "2026-11-02T05:00:00Z",
    "detail": {"alarmName": "rankops-dev-p2-feature-drift", "state": {"value": "ALARM", "reason": "PSI 0.31"}},
}


def test_weekly_schedule_starts_an_execution_with_the_trigger_as_input(pipeline: dict[str, str]) -> None:
    result = trigger.handler(SCHEDULED, None)
    assert result == {**result, "started": True, "trigger": "schedule", "name": "auto-20261102T0000"}
    (execution,) = executions(pipeline["machine"])
    described = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"])["trigger"]["trigger"] == "schedule"
    assert inbox(pipeline["queue"]) == []  # routine triggers are not announced


def test_no_second_run_while_one_is_running(pipeline: dict[str, str]) -> None:
    trigger.handler(SCHEDULED, None)
    result = trigger.handler(DRIFT, None)
    assert result["started"] is False and result["running"] == "auto-20261102T0000"
    assert len(executions(pipeline["machine"])) == 1


def test_drift_alarm_starts_a_run_and_ok_transitions_do_not(pipeline: dict[str, str]) -> None:
    ok = {**DRIFT, "detail": {**DRIFT["detail"], "state": {"value": "OK"}}}
    assert trigger.handler(ok, None)["started"] is False
    result = trigger.handler(DRIFT, None)
    assert result["started"] is True and result["trigger"] == "drift"
    described = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=result["execution_arn"]
    )
    assert "PSI 0.31" in json.loads(described["input"])["trigger"]["reason"]


def test_emergency_retrain_is_announced_started_or_not(pipeline: dict[str, str]) -> None:
    event = {
        "id": "ops-7",
        "source": "rankops.ops",
        "detail-type": trigger.EMERGENCY_DETAIL_TYPE,
        "time": "2026-11-02T09:30:00Z",
        "detail": {"environment": "dev", "reason": "bad model after catalogue import", "requested_by": "alice"},
    }
    assert trigger.handler(event, None)["started"] is True
    (started,) = inbox(pipeline["queue"])
    assert "alice" in started and "bad model after catalogue import" in started and "started" in started
    second = trigger.handler({"trigger": "emergency", "reason": "again", "requested_by": "bob"}, None)
    assert second["started"] is False
    (refused,) = inbox(pipeline["queue"])
    assert "NOT started" in refused and "bob" in refused
    stop_all(pipeline["machine"])
    redelivered = trigger.handler(event, None)  # the same event again: the same execution name
    assert redelivered["started"] is False and "already" in redelivered["reason"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"trigger": "emergency", "requested_by": "alice"}, "non-empty 'reason'"),
        ({"trigger": "emergency", "reason": "x"}, "requested_by"),
        ({"detail-type": "Something Else"}, "unsupported event"),
    ],
)
def test_bad_requests_name_the_problem(pipeline: dict[str, str], event: dict, message: str) -> None:
    with pytest.raises(trigger.BadRequest, match=message):
        trigger.handler(event, None)
    assert executions(pipeline["machine"]) == []


def test_execution_names_are_valid_for_step_functions() -> None:
    request = trigger.RetrainRequest("emergency", "r", "me", "a b/c:" * 30, "2026-11-02T09:30:00Z")
    name = trigger.execution_name(request)
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)


def test_persisting_drift_starts_one_retrain_per_cooldown(pipeline: dict[str, str]) -> None:
    assert os.environ["RETRAIN_COOLDOWN_HOURS"] == "24", "the deployed default"
    now = datetime.now(UTC)  # the alarm events arrive in real time: the executions start now

    def alarm(after: timedelta) -> dict:
        return {**DRIFT, "id": f"alarm-{after}", "time": (now + after).strftime("%Y-%m-%dT%H:%M:%SZ")}

    first = trigger.handler(alarm(timedelta(0)), None)
    assert first["started"] is True and first["name"].startswith("auto-")
    stop_all(pipeline["machine"])  # that retrain is over; the drift persists
    for after in (timedelta(hours=1), timedelta(hours=23)):  # the alarm flaps back into ALARM
        result = trigger.handler(alarm(after), None)
        assert result["started"] is False and result["reason"].startswith(f"cooldown: {first['name']}"), result
    later = trigger.handler(alarm(timedelta(hours=25)), None)
    assert later["started"] is True and later["name"] != first["name"]
    assert len(executions(pipeline["machine"])) == 2


def test_triggers_racing_past_the_checks_start_one_run(pipeline: dict[str, str]) -> None:
    """Two triggers of one window that both saw no execution (the check-then-start race): the
    window's execution name lets Step Functions refuse the second start."""
    sfn = boto3.client("stepfunctions", region_name=REGION)

    class SeenBeforeEitherStarted:  # list_executions answers what both triggers saw; the starts are real
        exceptions = sfn.exceptions
        start_execution = staticmethod(sfn.start_execution)

        @staticmethod
        def list_executions(**_: object) -> dict:
            return {"executions": []}

    sns = boto3.client("sns", region_name=REGION)
    requests = [retrain.parse(SCHEDULED, datetime.now(UTC)), retrain.parse(DRIFT, datetime.now(UTC))]
    results = [
        retrain.trigger(r, SeenBeforeEitherStarted(), sns, pipeline["machine"], "unused")  # type: ignore[arg-type]
        for r in requests
        if r is not None
    ]
    assert [r["started"] for r in results] == [True, False]
    assert "already ran in this trigger window" in results[1]["reason"]
    assert len(executions(pipeline["machine"])) == 1
