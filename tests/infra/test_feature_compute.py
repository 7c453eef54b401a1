"""EMR Serverless application, its job role (lake prefixes only) and the hourly schedule."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import ENVS, by_suffix
from tests.infra.test_iam import as_list


@pytest.mark.parametrize("env", ENVS)
def test_emr_serverless_application(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    (app,) = synth.resources("feature-compute", "AWS::EMRServerless::Application").values()
    props = app["Properties"]
    emr = synth.config.aws.emr
    assert props["Type"] == "Spark" and props["ReleaseLabel"] == emr.release_label == "emr-spark-8.0.0"
    assert props["AutoStopConfiguration"] == {"Enabled": True, "IdleTimeoutMinutes": emr.idle_timeout_minutes}
    assert props["MaximumCapacity"] == {"Cpu": emr.max_cpu, "Memory": emr.max_memory}
    assert len(props["NetworkConfiguration"]["SubnetIds"]) == synth.config.aws.max_azs
    image = props["ImageConfiguration"]["ImageUri"]["Fn::Join"][1]
    assert "ImageEmrRepository" in json.dumps(image) and image[-1] == f":{synth.config.image_tag}"
    assert props["MonitoringConfiguration"]["CloudWatchLoggingConfiguration"]["Enabled"] is True
    (defaults,) = props["RuntimeConfiguration"]
    assert defaults["Classification"] == "spark-defaults"
    conf = defaults["Properties"]
    for scope in ("spark.emr-serverless.driverEnv", "spark.executorEnv"):
        assert conf[f"{scope}.RANKOPS_ENV"] == env
        assert conf[f"{scope}.RANKOPS_SPARK__MASTER"] != "local[*]"  # EMR chooses the master
        assert {f"{scope}.RANKOPS_LAKE__{z}" for z in ("RAW", "CURATED", "FEATURES", "ARTIFACTS")} <= set(conf)
        assert f"{scope}.RANKOPS_ONLINE_STORE__DYNAMODB__TABLE" in conf


def test_job_role_reads_only_the_raw_dataset_prefixes(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    roles = synth.resources("feature-compute", "AWS::IAM::Role")
    job_role = by_suffix(roles, "JobRole")
    assert job_role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "emr-serverless.amazonaws.com"
    }
    policy = by_suffix(synth.resources("feature-compute", "AWS::IAM::Policy"), "JobRoleDefaultPolicy")
    raw_objects = []
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        for resource in as_list(statement["Resource"]):
            text = json.dumps(resource)
            if "LakeRawBucket" in text and "/" in text:
                raw_objects.append(text)
                # the streaming job's own folder (infra/constructs/stream_compute.py) and where the monitoring
                # job keeps unparsable capture lines (infra/constructs/monitor_schedule.py)
                if "/stream/*" in text or "/feedback_quarantine/*" in text:
                    continue
                assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in as_list(statement["Action"]))
    # the monitoring job reads the endpoint's data capture and outcome events
    prefixes = ("events", "items", "_meta", "stream", "datacapture", "outcomes", "feedback_quarantine")
    assert raw_objects and all(any(f"/{p}/*" in t for p in prefixes) for t in raw_objects)


def test_hourly_rule_starts_the_job_through_the_starter(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    rules = synth.resources("feature-compute", "AWS::Events::Rule")
    hourly = by_suffix(rules, "FeaturesHourly")  # MonitorHourly: tests/infra/test_monitor_schedule.py
    assert hourly["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    (target,) = hourly["Properties"]["Targets"]
    assert "FeaturesStarterFunction" in json.dumps(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    starter = by_suffix(synth.resources("feature-compute", "AWS::Lambda::Function"), "FeaturesStarterFunction")
    env = starter["Properties"]["Environment"]["Variables"]
    assert json.loads(env["ENTRY_POINT_ARGUMENTS"]) == ["--env", "dev", "--hours-back", "1", "--materialize"]
    assert "emr/" in json.dumps(env["ENTRY_POINT"]) and env["ENTRY_POINT"]["Fn::Join"][1][-1].endswith(
        "/build_features.py"
    )
    failed = by_suffix(rules, "JobFailed")
    pattern = failed["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.emr-serverless"] and pattern["detail"]["state"] == ["FAILED"]
    assert "FailuresTopic" in json.dumps(failed["Properties"]["Targets"])


def test_describe_log_groups_is_granted_where_aws_authorizes_it(synthesized) -> None:  # type: ignore[no-untyped-def]
    """logs:DescribeLogGroups is authorized on arn:aws:logs:<region>:<account>:*, not on one group's ARN."""
    policy = by_suffix(synthesized["dev"].resources("feature-compute", "AWS::IAM::Policy"), "JobRoleDefaultPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (describe,) = [s for s in statements if "logs:DescribeLogGroups" in as_list(s["Action"])]
    assert as_list(describe["Action"]) == ["logs:DescribeLogGroups"]
    assert describe["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":",
                          {"Ref": "AWS::AccountId"}, ":*"]]
    }  # fmt: skip
    (streams,) = [s for s in statements if "logs:DescribeLogStreams" in as_list(s["Action"])]
    assert "JobLogs" in json.dumps(streams["Resource"])
