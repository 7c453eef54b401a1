"""The hourly monitoring run as synthesized: its schedule, its starter's job, and what the job role may do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import by_suffix
from tests.infra.test_iam import as_list

STARTER = "lambdas.start_monitor_job.handler.handler"


@pytest.fixture(scope="module")
def dev(synthesized_env: Any) -> Any:
    return synthesized_env("dev")


def joined(value: Any) -> str:
    """A string property as text, each token (import, reference) shown as its JSON."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(p if isinstance(p, str) else json.dumps(p) for p in value["Fn::Join"][1])
    return value if isinstance(value, str) else json.dumps(value)


def starter(dev: Any) -> dict[str, Any]:
    functions = dev.resources("feature-compute", "AWS::Lambda::Function").values()
    (function,) = [f for f in functions if f["Properties"]["Handler"] == STARTER]
    return dict(function["Properties"])


def test_a_few_minutes_past_every_hour_the_starter_runs(dev: Any) -> None:
    rules = dev.resources("feature-compute", "AWS::Events::Rule")
    (rule_id,) = [k for k in rules if "MonitorHourly" in k]
    props = rules[rule_id]["Properties"]
    assert props["ScheduleExpression"] == dev.config.aws.emr.monitor_schedule == "cron(5 * * * ? *)"
    (target,) = props["Targets"]
    assert "MonitorStarterFunction" in json.dumps(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2 and "DeadLetterConfig" in target


def test_the_starter_runs_the_monitor_entry_point_on_the_endpoints_capture(dev: Any) -> None:
    env = starter(dev)["Environment"]["Variables"]
    entry = joined(env["ENTRY_POINT"])
    assert "LakeArtifactsBucket" in entry and entry.endswith(f"/emr/{dev.config.image_tag}/monitor.py")
    arguments = joined(env["ENTRY_POINT_ARGUMENTS"])
    for expected in ('"--env", "dev"', '"--endpoint", "rankops-dev-ranker"', '"--metrics-namespace", "rankops"'):
        assert expected in arguments, arguments
    capture = arguments.split('"--capture-uri", ')[1]
    assert capture.startswith('"s3://') and "LakeRawBucket" in capture and capture.endswith('/datacapture"]')
    assert "--hour" not in arguments, "the starter adds the hour it judges"
    assert int(env["EXECUTION_TIMEOUT_MINUTES"]) < 60
    assert "FeaturesApplication" in json.dumps(env["APPLICATION_ID"]) and "JobRole" in json.dumps(env["JOB_ROLE_ARN"])


def statements(dev: Any, fragment: str) -> list[dict[str, Any]]:
    policy = by_suffix(dev.resources("feature-compute", "AWS::IAM::Policy"), fragment)
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def grants(dev: Any, fragment: str, bucket: str, prefix: str) -> set[str]:
    """The actions the policy allows on ``bucket``'s objects under ``prefix``."""
    return {
        action
        for s in statements(dev, fragment)
        for r in as_list(s["Resource"])
        if bucket in json.dumps(r) and joined(r).endswith(f"/{prefix}/*")
        for action in as_list(s["Action"])
    }


def test_the_job_role_reads_capture_outcomes_and_manifests_and_puts_metrics(dev: Any) -> None:
    role = "FeaturesJobRoleDefaultPolicy"
    for bucket, prefix in (("LakeRawBucket", "datacapture"), ("LakeRawBucket", "outcomes"),
                           ("LakeArtifactsBucket", "datasets")):  # fmt: skip
        actions = grants(dev, role, bucket, prefix)
        assert "s3:GetObject*" in actions and not any(a.startswith(("s3:Put", "s3:Delete")) for a in actions), prefix
    assert {"s3:PutObject", "s3:DeleteObject"} <= grants(dev, role, "LakeRawBucket", "feedback_quarantine")
    (put,) = [s for s in statements(dev, role) if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "rankops"}}


def test_the_starter_may_start_runs_and_pass_only_the_job_role(dev: Any) -> None:
    role = starter(dev)["Role"]["Fn::GetAtt"][0]
    policies = dev.resources("feature-compute", "AWS::IAM::Policy").values()
    (policy,) = [p for p in policies if {"Ref": role} in p["Properties"]["Roles"]]
    found = policy["Properties"]["PolicyDocument"]["Statement"]
    (start,) = [s for s in found if "emr-serverless:StartJobRun" in as_list(s["Action"])]
    assert "FeaturesApplication" in json.dumps(start["Resource"])
    (pass_role,) = [s for s in found if "iam:PassRole" in as_list(s["Action"])]
    assert "FeaturesJobRole" in json.dumps(pass_role["Resource"])
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}}
