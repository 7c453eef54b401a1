"""Streaming features in AWS, from the synthesized templates: the KMS-encrypted Kinesis stream,
the job role's least-privilege read of it, the keeper that starts the EMR Serverless STREAMING
run (with its retry policy) through real boto3 calls against moto, and the two alarms."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emrserverless.models import emrserverless_backends

from infra.constructs.stream_compute import FRESHNESS_THRESHOLD_S, ITERATOR_AGE_THRESHOLD_MS
from rankops.features import stream_runs
from tests.infra.conftest import ENVS, by_suffix
from tests.infra.test_iam import as_list

REGION = "eu-west-1"


def keeper_environment(template: dict) -> dict[str, str]:  # type: ignore[type-arg]
    """The keeper's environment as deployed: ``Fn::Join`` values joined, the stream's name (a
    ``Ref``) as ``deployed-stream-name``, other tokens as ``deployed``."""
    (function,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "lambdas.keep_stream_job.handler.handler"
    ]
    streams = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::Kinesis::Stream"}
    out = {}
    for name, value in function["Environment"]["Variables"].items():
        if isinstance(value, dict) and "Fn::Join" in value:
            parts = value["Fn::Join"][1]
            value = "".join(
                p if isinstance(p, str) else "deployed-stream-name" if p.get("Ref") in streams else "deployed"
                for p in parts
            )
        out[name] = value if isinstance(value, str) else "deployed"
    return out


def statements(synth, logical_fragment: str) -> list[dict]:  # type: ignore[no-untyped-def]
    policy = by_suffix(synth.resources("feature-compute", "AWS::IAM::Policy"), logical_fragment)
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


@pytest.mark.parametrize("env", ENVS)
def test_event_stream_is_kms_encrypted(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    (stream,) = synth.resources("feature-compute", "AWS::Kinesis::Stream").values()
    props = stream["Properties"]
    assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}
    assert props["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert props["Name"] == synth.config.name_of("events")


def test_job_role_reads_only_this_stream_and_writes_only_the_stream_prefix(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    (stream_id,) = synth.resources("feature-compute", "AWS::Kinesis::Stream")
    kinesis = [s for s in statements(synth, "JobRoleDefaultPolicy") if "kinesis:GetRecords" in as_list(s["Action"])]
    assert len(kinesis) == 1
    assert not any(a.startswith(("kinesis:Put", "kinesis:Delete")) for a in as_list(kinesis[0]["Action"]))
    assert as_list(kinesis[0]["Resource"]) == [{"Fn::GetAtt": [stream_id, "Arn"]}]
    raw_writes = [
        json.dumps(r)
        for s in statements(synth, "JobRoleDefaultPolicy")
        if any(a.startswith("s3:Put") for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
        if "LakeRawBucket" in json.dumps(r)
    ]
    # besides stream/, the role writes only the monitoring job's feedback_quarantine/ (test_monitor_schedule.py)
    assert any("/stream/*" in r for r in raw_writes), raw_writes
    assert all("/stream/*" in r or "/feedback_quarantine/*" in r for r in raw_writes), raw_writes


def test_keeper_runs_every_five_minutes_and_on_job_run_state_changes(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    rules = synth.resources("feature-compute", "AWS::Events::Rule")
    keep = by_suffix(rules, "KeepStreaming")
    assert keep["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    changed = by_suffix(rules, "StreamRunChanged")["Properties"]
    assert changed["EventPattern"]["detail"]["state"] == ["FAILED", "CANCELLED", "SUCCESS"]
    for rule in (keep["Properties"], changed):
        (target,) = rule["Targets"]
        assert "KeeperFunction" in json.dumps(target["Arn"])
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2 and "DeadLetterConfig" in target
    env = keeper_environment(synth.template("feature-compute"))
    arguments = json.loads(env["ENTRY_POINT_ARGUMENTS"])
    assert arguments[arguments.index("--source") + 1] == "kinesis://deployed-stream-name"
    assert arguments[arguments.index("--for") + 1] == "inf" and "--metrics-namespace" in arguments
    keeper = [
        s for s in statements(synth, "KeeperRoleDefaultPolicy") if "emr-serverless:StartJobRun" in as_list(s["Action"])
    ]
    assert len(keeper) == 1 and "emr-serverless:CancelJobRun" not in as_list(keeper[0]["Action"])


@pytest.mark.parametrize("env", ENVS)
def test_alarms_on_freshness_and_iterator_age_page_p2(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    alarms = synth.resources("feature-compute", "AWS::CloudWatch::Alarm")
    fresh = by_suffix(alarms, "StreamFreshness")["Properties"]
    assert (fresh["Namespace"], fresh["MetricName"]) == ("rankops", stream_runs.FRESHNESS_METRIC)
    assert fresh["Dimensions"] == [{"Name": "Environment", "Value": env}]
    assert fresh["Threshold"] == FRESHNESS_THRESHOLD_S == 600 and fresh["TreatMissingData"] == "breaching"
    age = by_suffix(alarms, "StreamIteratorAge")["Properties"]
    assert (age["Namespace"], age["MetricName"]) == ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds")
    (stream_id,) = synth.resources("feature-compute", "AWS::Kinesis::Stream")
    assert age["Dimensions"] == [{"Name": "StreamName", "Value": {"Ref": stream_id}}]
    assert age["Threshold"] == ITERATOR_AGE_THRESHOLD_MS and age["Statistic"] == "Maximum"
    for alarm in (fresh, age):
        assert "P2" in json.dumps(alarm["AlarmActions"]) or "p2" in json.dumps(alarm["AlarmActions"]).lower()


# -- the keeper's AWS calls (moto), with the environment CDK gives the function --------------------
@pytest.fixture
def keeper_env(synthesized, aws, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    deployed = keeper_environment(synthesized["dev"].template("feature-compute"))
    emr = boto3.client("emr-serverless", region_name=REGION)
    app_id = emr.create_application(name="rankops-dev-features", releaseLabel="emr-7.9.0", type="SPARK")[
        "applicationId"
    ]
    emrserverless_backends[DEFAULT_ACCOUNT_ID][REGION].job_runs.setdefault(app_id, [])  # moto: [] not 404
    for name, value in {
        **deployed,
        "APPLICATION_ID": app_id,
        "JOB_ROLE_ARN": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/job",
    }.items():
        monkeypatch.setenv(name, value)
    return app_id


def test_keeper_starts_one_streaming_run_and_restarts_it_when_it_ends(keeper_env: str) -> None:
    from lambdas.keep_stream_job import handler as keeper

    emr = boto3.client("emr-serverless", region_name=REGION)
    sent: list[dict] = []  # what went over the wire, as botocore validated it against the API model
    emr_client = boto3.client("emr-serverless", region_name=REGION)
    emr_client.meta.events.register(
        "provide-client-params.emr-serverless.StartJobRun", lambda params, **_: sent.append(params)
    )
    settings = stream_runs.StreamJobSettings.from_environ(os.environ)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)

    first = stream_runs.keep_running(settings, emr_client, cloudwatch, datetime.now(UTC))
    assert first["started"] is True
    (params,) = sent
    assert params["mode"] == "STREAMING" and params["retryPolicy"] == {"maxFailedAttemptsPerHour": 5}
    assert params["name"] == stream_runs.RUN_NAME and "executionTimeoutMinutes" not in params
    args = params["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    assert args[args.index("--source") + 1].startswith(stream_runs.KINESIS_SCHEME)

    assert len(emr.list_job_runs(applicationId=keeper_env)["jobRuns"]) == 1
    backend = emrserverless_backends[DEFAULT_ACCOUNT_ID][REGION].job_runs[keeper_env]
    backend[0].state = "RUNNING"
    assert keeper.handler({}, None)["started"] is False, "one run at a time"
    backend[0].state = "FAILED"  # EMR's retries gave up
    again = keeper.handler({"detail": {"state": "FAILED"}}, None)
    assert again["started"] is True and len(emr.list_job_runs(applicationId=keeper_env)["jobRuns"]) == 2
    points = cloudwatch.list_metrics(Namespace="rankops", MetricName=stream_runs.ACTIVE_METRIC)["Metrics"]
    assert points, "whether a run is active is published on every call"
