"""The drift job is the producer of the deployed FeatureDriftPSI alarm's metric (moto CloudWatch),
and the business alarms treat missing data on purpose."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
from moto import mock_aws

from infra.config import ALARM_DRIFT, ALARM_REVENUE
from rankops.monitoring.drift_report import publish_cloudwatch
from tests.infra.test_monitoring import alarms_by_name


def test_the_drift_job_publishes_the_metric_the_drift_alarm_watches(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    alarms = alarms_by_name(synth)
    drift = alarms[synth.config.alarm_name(ALARM_DRIFT)]
    assert drift["TreatMissingData"] == "ignore"
    assert alarms[synth.config.alarm_name(ALARM_REVENUE)]["TreatMissingData"] == "missing"
    hour = datetime(2026, 12, 1, 9, tzinfo=UTC)
    report = {"max_psi": 0.31, "hourly": [{"start": hour.isoformat(), "psi": {"price": 0.31}}]}
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        publish_cloudwatch(report, cloudwatch, drift["Namespace"], synth.config.name)
        stats = cloudwatch.get_metric_statistics(
            Namespace=drift["Namespace"],
            MetricName=drift["MetricName"],
            Dimensions=drift["Dimensions"],
            StartTime=hour,
            EndTime=datetime(2026, 12, 1, 12, tzinfo=UTC),
            Period=drift["Period"],
            Statistics=[drift["Statistic"]],
        )
    (point,) = stats["Datapoints"]
    assert point[drift["Statistic"]] == 0.31 > drift["Threshold"], "this datum puts the alarm in ALARM"
