"""The endpoint's P1 alarms, which also drive the blue/green deployment's automatic rollback.

SageMaker watches these alarms during every traffic shift and bake period; if one
fires, all traffic returns to the old fleet. They are named from the configuration,
not referenced by export, because the endpoint (which lists them) and the monitoring
stack (which graphs them) must agree on them. All are on the one production variant:
  - 5xx share of invocations above ``aws.alarms.error_5xx_percent``;
  - ModelLatency p99 above the latency budget (``aws.alarms.latency_p99_ms`` or
    ``serving.latency_budget_ms``; SageMaker reports microseconds);
  - InvocationModelErrors share above ``aws.alarms.model_error_percent``;
  - share of answers given by a lower level of the fallback chain above
    ``aws.alarms.degraded_percent``: the server never returns 5xx for a degraded dependency,
    so without this a model that cannot use its features would look healthy. The servers
    write a JSON summary line per model version to stdout (rankops.monitoring.answer_summary);
    SageMaker ships it to the endpoint's log group, created here so metric filters can turn
    the lines into ``Answers``/``DegradedAnswers`` (total, and per ``ModelVersion`` for the
    pipeline's canary check, rankops.release.checks).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import ALARM_5XX, ALARM_DEGRADED, ALARM_LATENCY, ALARM_MODEL_ERRORS, SERVING_VARIANT, EnvConfig
from rankops.release.checks import (
    ANSWER_EVENT,
    ANSWERS_METRIC,
    DEGRADED_METRIC,
    VERSION_DIMENSION,
    answers_namespace,
)


def endpoint_metric(config: EnvConfig, name: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/SageMaker",
        metric_name=name,
        dimensions_map={"EndpointName": config.endpoint_name, "VariantName": SERVING_VARIANT},
        statistic=statistic,
        period=Duration.seconds(config.aws.alarms.period_seconds),
    )


def error_share(config: EnvConfig, errors_metric: str, label: str) -> cloudwatch.MathExpression:
    """Errors as a percentage of invocations (0 when there is no traffic)."""
    errors = errors_metric.lower()  # ids must differ between expressions drawn on one graph
    return cloudwatch.MathExpression(
        expression=f"IF(invocations > 0, 100 * {errors} / invocations, 0)",
        using_metrics={
            errors: endpoint_metric(config, errors_metric, "Sum"),
            "invocations": endpoint_metric(config, "Invocations", "Sum"),
        },
        label=label,
        period=Duration.seconds(config.aws.alarms.period_seconds),
    )


def answer_metric(config: EnvConfig, name: str) -> cloudwatch.Metric:
    """The endpoint's total ``Answers`` or ``DegradedAnswers`` (from the servers' summary lines)."""
    return cloudwatch.Metric(
        namespace=answers_namespace(config.endpoint_name),
        metric_name=name,
        statistic="Sum",
        period=Duration.seconds(config.aws.alarms.period_seconds),
    )


class EndpointAlarms(Construct):
    """Exposes ``alarms`` (5xx, latency, model errors, degraded answers), each notifying the P1
    topic, and ``log_group``, the endpoint's container log group (with the answer metric filters)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, p1: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        cfg = config.aws.alarms
        # SageMaker writes the containers' stdout here (it would create the group on first write;
        # owning it lets the metric filters exist before the first line, and sets its retention)
        self.log_group = logs.LogGroup(
            self,
            "EndpointLogs",
            log_group_name=f"/aws/sagemaker/Endpoints/{config.endpoint_name}",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        pattern = logs.FilterPattern.string_value("$.rankops", "=", ANSWER_EVENT)
        for metric, field in ((ANSWERS_METRIC, "$.answers"), (DEGRADED_METRIC, "$.degraded")):
            for per_version in (False, True):
                logs.MetricFilter(
                    self,
                    f"{metric}Filter{'ByVersion' if per_version else ''}",
                    log_group=self.log_group,
                    filter_pattern=pattern,
                    metric_namespace=answers_namespace(config.endpoint_name),
                    metric_name=metric,
                    metric_value=field,
                    dimensions={VERSION_DIMENSION: "$.model_version"} if per_version else None,
                )

        def alarm(
            construct_id: str, key: str, description: str, metric: cloudwatch.IMetric, threshold: float
        ) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=config.alarm_name(key),
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=cfg.evaluation_periods,
                datapoints_to_alarm=cfg.datapoints_to_alarm,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        self.alarms = [
            alarm(
                "Errors5xx",
                ALARM_5XX,
                f"P1: more than {cfg.error_5xx_percent}% of invocations return 5xx",
                error_share(config, "Invocation5XXErrors", "5xx %"),
                cfg.error_5xx_percent,
            ),
            alarm(
                "LatencyP99",
                ALARM_LATENCY,
                f"P1: model latency p99 above {config.latency_p99_ms} ms",
                endpoint_metric(config, "ModelLatency", "p99"),
                config.latency_p99_ms * 1000,  # SageMaker reports microseconds
            ),
            alarm(
                "ModelErrors",
                ALARM_MODEL_ERRORS,
                f"P1: more than {cfg.model_error_percent}% of invocations are model errors",
                error_share(config, "InvocationModelErrors", "model error %"),
                cfg.model_error_percent,
            ),
            alarm(
                "DegradedAnswers",
                ALARM_DEGRADED,
                f"P1: more than {cfg.degraded_percent}% of answers come from a lower level of the fallback chain",
                cloudwatch.MathExpression(
                    expression="IF(answers > 0, 100 * degraded / answers, 0)",
                    using_metrics={
                        "degraded": answer_metric(config, DEGRADED_METRIC),
                        "answers": answer_metric(config, ANSWERS_METRIC),
                    },
                    label="degraded answers %",
                    period=Duration.seconds(cfg.period_seconds),
                ),
                cfg.degraded_percent,
            ),
        ]
        for each in self.alarms:
            each.add_alarm_action(actions.SnsAction(p1))
            each.add_ok_action(actions.SnsAction(p1))
