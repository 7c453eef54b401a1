"""Monitoring: the remaining P1/P2 alarms, routed by severity, and one dashboard.

P1 (page, P1 topic): the endpoint's 5xx, latency and model-error alarms (created with
the endpoint, :mod:`infra.constructs.endpoint_alarms`) and a revenue-proxy drop below
its anomaly band. P2 (ticket, P2 topic): feature drift (which also triggers retraining,
:mod:`infra.constructs.pipeline_triggers`), feature freshness lag, pipeline failure.

Custom metrics live in the ``rankops`` namespace with dimension ``Environment``:
``RevenueProxy`` and ``FeatureDriftPSI`` are published by the hourly monitoring run
(:mod:`infra.constructs.monitor_schedule`);
``FeatureFreshnessLagMinutes`` by ``lambdas/start_feature_job`` every hour (its absence
is itself an alarm). docs/deploy.md lists this contract.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import (
    ALARM_DRIFT,
    ALARM_FRESHNESS,
    ALARM_PIPELINE,
    ALARM_REVENUE,
    ENDPOINT_ALARMS,
    METRICS_NAMESPACE,
    EnvConfig,
)
from infra.constructs.endpoint_alarms import endpoint_metric, error_share
from rankops.features.runs import FRESHNESS_METRIC

REVENUE_METRIC = "RevenueProxy"
DRIFT_METRIC = "FeatureDriftPSI"


def custom_metric(config: EnvConfig, name: str, statistic: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"Environment": config.name},
        statistic=statistic,
        period=period,
    )


class Monitoring(Construct):
    """Exposes ``alarms`` (by key) and ``dashboard``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvConfig, p1: sns.ITopic, p2: sns.ITopic
    ) -> None:
        super().__init__(scope, construct_id)
        cfg = config.aws.alarms
        state_machine_arn = (
            f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:stateMachine:{config.state_machine_name}"
        )
        # the online-metrics job publishes RevenueProxy and the drift job FeatureDriftPSI once an hour
        self.revenue = custom_metric(config, REVENUE_METRIC, "Sum", Duration.hours(1))
        self.drift = custom_metric(config, DRIFT_METRIC, "Maximum", Duration.hours(1))
        self.freshness = custom_metric(config, FRESHNESS_METRIC, "Maximum", Duration.hours(1))
        self.pipeline_failures = cloudwatch.MathExpression(
            expression="failed + timedout + aborted",
            using_metrics={
                key: cloudwatch.Metric(
                    namespace="AWS/States",
                    metric_name=name,
                    dimensions_map={"StateMachineArn": state_machine_arn},
                    statistic="Sum",
                    period=Duration.minutes(5),
                )
                for key, name in (
                    ("failed", "ExecutionsFailed"),
                    ("timedout", "ExecutionsTimedOut"),
                    ("aborted", "ExecutionsAborted"),
                )
            },
            label="failed executions",
            period=Duration.minutes(5),
        )
        self.alarms: dict[str, cloudwatch.Alarm | cloudwatch.AnomalyDetectionAlarm] = {}
        self.alarms[ALARM_REVENUE] = cloudwatch.AnomalyDetectionAlarm(
            self,
            "RevenueDrop",
            alarm_name=config.alarm_name(ALARM_REVENUE),
            alarm_description=f"P1: revenue proxy fell below its expected band ({cfg.revenue_drop_band} std devs)",
            metric=self.revenue,
            std_devs=cfg.revenue_drop_band,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_LOWER_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            # An hour without a datum means the metrics job or the feedback log stopped (an hour with
            # traffic but no sale is published as 0, which the band judges). Treating it as not
            # breaching would hide that blindness as "OK"; as breaching, it would page before the job's
            # first run. MISSING shows INSUFFICIENT_DATA on the dashboard's alarm widget instead.
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )
        self.alarms[ALARM_DRIFT] = cloudwatch.Alarm(
            self,
            "FeatureDrift",
            alarm_name=config.alarm_name(ALARM_DRIFT),
            alarm_description=f"P2: a model feature drifted (PSI > {cfg.feature_drift_psi}); triggers retraining",
            metric=self.drift,
            threshold=cfg.feature_drift_psi,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            # `rankops drift --publish` sends a datum only for an hour with traffic: an hour without
            # one says nothing about drift. IGNORE keeps the last state, so a quiet hour neither
            # clears a real drift nor makes the alarm flap OK -> ALARM, which would start the retrain
            # trigger again on every flap (NOT_BREACHING did both).
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self.alarms[ALARM_FRESHNESS] = cloudwatch.Alarm(
            self,
            "FeatureFreshness",
            alarm_name=config.alarm_name(ALARM_FRESHNESS),
            alarm_description=f"P2: no successful feature job for {config.freshness_hours} h (or no report)",
            metric=self.freshness,
            threshold=config.freshness_hours * 60,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self.alarms[ALARM_PIPELINE] = cloudwatch.Alarm(
            self,
            "PipelineFailed",
            alarm_name=config.alarm_name(ALARM_PIPELINE),
            alarm_description="P2: a pipeline execution failed, timed out or was aborted",
            metric=self.pipeline_failures,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for key, alarm in self.alarms.items():
            topic = p1 if key.startswith("p1-") else p2
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))
        self.dashboard = self._dashboard(config)

    def _dashboard(self, config: EnvConfig) -> cloudwatch.Dashboard:
        def status(key: str) -> cloudwatch.IAlarm:
            return cloudwatch.Alarm.from_alarm_name(self, f"Status{key}", config.alarm_name(key))

        endpoint_alarms = [status(k) for k in ENDPOINT_ALARMS]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=config.name_of("overview"))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="P1 / P2 alarms", alarms=[*endpoint_alarms, *self.alarms.values()], width=24, height=4
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations and instances",
                left=[endpoint_metric(config, "Invocations", "Sum")],
                right=[endpoint_metric(config, "InvocationsPerInstance", "Sum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Model latency (µs)",
                left=[endpoint_metric(config, "ModelLatency", s) for s in ("p50", "p99")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Errors (% of invocations)",
                left=[
                    error_share(config, "Invocation5XXErrors", "5xx %"),
                    error_share(config, "InvocationModelErrors", "model error %"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Revenue proxy", left=[self.revenue], width=6),
            cloudwatch.GraphWidget(title="Feature drift (max PSI)", left=[self.drift], width=6),
            cloudwatch.GraphWidget(title="Feature freshness lag (min)", left=[self.freshness], width=6),
            cloudwatch.GraphWidget(title="Pipeline failures", left=[self.pipeline_failures], width=6),
        )
        return dashboard
