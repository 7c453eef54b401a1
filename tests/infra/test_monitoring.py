"""P1/P2 alarms, routing by severity, the dashboard, and the topics they publish to."""

from __future__ import annotations

import json

import pytest

from infra.config import ALARM_DRIFT, ALARM_FRESHNESS, ALARM_PIPELINE, ALARM_REVENUE
from rankops.features import registry
from tests.infra.conftest import ENVS


def alarms_by_name(synth) -> dict:  # type: ignore[no-untyped-def]
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.resources("monitoring", "AWS::CloudWatch::Alarm").values()
    }


@pytest.mark.parametrize("env", ENVS)
def test_p1_and_p2_alarms_route_by_severity(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    alarms = alarms_by_name(synth)
    assert set(alarms) == {
        synth.config.alarm_name(k) for k in (ALARM_REVENUE, ALARM_DRIFT, ALARM_FRESHNESS, ALARM_PIPELINE)
    }
    for name, alarm in alarms.items():
        topic = "P1Topic" if name.startswith(f"rankops-{env}-p1-") else "P2Topic"
        assert topic in json.dumps(alarm["AlarmActions"]) and topic in json.dumps(alarm["OKActions"]), name


def test_alarm_definitions(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    alarms = alarms_by_name(synth)
    revenue = alarms[synth.config.alarm_name(ALARM_REVENUE)]
    assert revenue["ComparisonOperator"] == "LessThanLowerThreshold"
    assert "ANOMALY_DETECTION_BAND" in json.dumps(revenue["Metrics"]) and "RevenueProxy" in json.dumps(
        revenue["Metrics"]
    )
    drift = alarms[synth.config.alarm_name(ALARM_DRIFT)]
    assert (drift["MetricName"], drift["Namespace"], drift["Threshold"]) == ("FeatureDriftPSI", "rankops", 0.2)
    assert drift["Dimensions"] == [{"Name": "Environment", "Value": "dev"}]
    freshness = alarms[synth.config.alarm_name(ALARM_FRESHNESS)]
    assert freshness["MetricName"] == "FeatureFreshnessLagMinutes"
    tightest = min(f.freshness_sla for f in registry.FEATURES if f.kind not in ("on_demand", "stream"))
    assert freshness["Threshold"] == synth.config.freshness_hours * 60 == tightest.total_seconds() / 60
    assert freshness["TreatMissingData"] == "breaching"  # silence from the hourly starter is itself an alarm
    pipeline = alarms[synth.config.alarm_name(ALARM_PIPELINE)]
    metrics = json.dumps(pipeline["Metrics"])
    assert all(m in metrics for m in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"))
    assert "stateMachine:rankops-dev-pipeline" in metrics


def test_dashboard_shows_serving_features_and_pipeline(synthesized) -> None:  # type: ignore[no-untyped-def]
    (dashboard,) = synthesized["dev"].resources("monitoring", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in (
        "ModelLatency",
        "Invocation5XXErrors",
        "RevenueProxy",
        "FeatureDriftPSI",
        "FeatureFreshnessLagMinutes",
    ):
        assert needle in body


@pytest.mark.parametrize("env", ENVS)
def test_topics_are_encrypted_tls_only_and_publishable_by_alarms(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized[env]
    topics = synth.resources("alerts", "AWS::SNS::Topic")
    assert {t["Properties"]["TopicName"] for t in topics.values()} == {
        f"rankops-{env}-{n}" for n in ("p1", "p2", "failures", "approvals")
    }
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    for policy in synth.resources("alerts", "AWS::SNS::TopicPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )
    (key,) = synth.resources("alerts", "AWS::KMS::Key").values()
    services = json.dumps(key["Properties"]["KeyPolicy"])
    assert "cloudwatch.amazonaws.com" in services and "events.amazonaws.com" in services
    assert key["Properties"]["EnableKeyRotation"] is True
