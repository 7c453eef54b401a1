"""The drift alarm's state change, as the rehearsal's retrain-trigger scenario builds it, is routed by
the synthesized drift rule (and only by it) to the retrain Lambda; the alarm going back to OK, or
another alarm entering ALARM, starts nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rankops.rehearse.scenario_trigger import matches, state_change
from tests.infra.conftest import ENVS, Synthesized


def _rules(synthesized: Synthesized) -> dict[str, dict[str, object]]:
    return {
        logical_id: r["Properties"]
        for _, logical_id, r in synthesized.all_resources()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    }


@pytest.mark.parametrize("env", ENVS)
def test_only_the_drift_rule_routes_the_drift_alarm(synthesized: dict[str, Synthesized], env: str) -> None:
    s = synthesized[env]
    (drift,) = [
        r["Properties"]
        for _, _, r in s.all_resources()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "FeatureDriftPSI"
    ]
    alarm = {"AlarmName": drift["AlarmName"], "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:1:alarm:{drift['AlarmName']}"}
    fired = state_change("eu-west-1", alarm, "Threshold Crossed", datetime(2026, 12, 1, 9, tzinfo=UTC), "OK")
    routed = [k for k, rule in _rules(s).items() if matches(json.dumps(rule["EventPattern"]), fired)]
    assert len(routed) == 1 and "Drift" in routed[0], routed
    (target,) = _rules(s)[routed[0]]["Targets"]  # type: ignore[misc]
    assert "Trigger" in json.dumps(target["Arn"]), target  # the retrain_trigger function's ARN
    back_to_ok = {**fired, "detail": {**fired["detail"], "state": {"value": "OK"}}}
    other = {**fired, "detail": {**fired["detail"], "alarmName": f"{drift['AlarmName']}-other"}}
    assert not [k for k, rule in _rules(s).items() if matches(json.dumps(rule["EventPattern"]), back_to_ok)]
    assert not [k for k, rule in _rules(s).items() if matches(json.dumps(rule["EventPattern"]), other)]
