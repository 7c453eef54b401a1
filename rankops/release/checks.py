"""The release Lambda's traffic checks (``SageMakerEndpoint.check``), pure functions: after traffic
moved, the variant's error rate, p95 latency, the share of degraded answers of the new model
version (``DegradedAnswers``/``Answers``, the metrics the servers' answer summaries become, see
:mod:`rankops.monitoring.answer_summary`) and a business proxy metric from CloudWatch must be
within bounds.

Standard library and NumPy only: the release Lambda imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from rankops.release.rate_limit import judge_rate

# The servers' answer summaries (one JSON line per model version on stdout) and the CloudWatch
# metrics the endpoint's log metric filters make of them (infra/constructs/endpoint_alarms.py).
ANSWER_EVENT = "answers"
ANSWERS_METRIC, DEGRADED_METRIC = "Answers", "DegradedAnswers"
VERSION_DIMENSION = "ModelVersion"


def answers_namespace(endpoint_name: str) -> str:
    """CloudWatch namespace of one endpoint's answer metrics (a log group holds one endpoint)."""
    return f"rankops/{endpoint_name}"


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": list(self.checks), "figures": dict(self.figures)}


def _result(checks: list[dict[str, Any]], figures: dict[str, Any]) -> CheckResult:
    return CheckResult(all(c["passed"] for c in checks), checks, figures)


def _require(event: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in event:
        raise ValueError(f"the event needs {key!r}")
    value = event[key]
    if not isinstance(value, kind):
        raise ValueError(f"event field {key!r} has the wrong type ({type(value).__name__})")
    return value


# -- post-traffic -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BusinessMetric:
    """A business proxy published to CloudWatch (e.g. click-through of served rankings)."""

    namespace: str
    name: str
    dimensions: dict[str, str]
    minimum: float
    stat: str = "Average"


@dataclass(frozen=True)
class PostTrafficEvent:
    endpoint_name: str
    variant_name: str
    window_minutes: int = 10
    max_error_rate: float = 0.001
    max_latency_p95_ms: float = 100.0
    min_invocations: int = 1
    latency_stat: str = "p95"
    business: BusinessMetric | None = None
    model_version: str | None = None  # the new model: its answers may not degrade more than this share
    max_degraded_rate: float = 0.01

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> PostTrafficEvent:
        business = event.get("business_metric")
        if business is not None:
            if not isinstance(business, dict):
                raise ValueError("business_metric must be an object with namespace, name, dimensions, minimum")
            business = BusinessMetric(
                _require(business, "namespace", str),
                _require(business, "name", str),
                dict(business.get("dimensions", {})),
                float(_require(business, "minimum", (int, float))),
                str(business.get("stat", "Average")),
            )
        return cls(
            _require(event, "endpoint_name", str),
            _require(event, "variant_name", str),
            int(event.get("window_minutes", 10)),
            float(event.get("max_error_rate", 0.001)),
            float(event.get("max_latency_p95_ms", 100.0)),
            int(event.get("min_invocations", 1)),
            str(event.get("latency_stat", "p95")),
            business,
            None if event.get("model_version") is None else str(event["model_version"]),
            float(event.get("max_degraded_rate", 0.01)),
        )


def metric_data_request(event: PostTrafficEvent, start: datetime, end: datetime) -> dict[str, Any]:
    """CloudWatch ``GetMetricData`` for the variant: invocations, 5xx errors, model latency, business proxy."""
    dims = [
        {"Name": "EndpointName", "Value": event.endpoint_name},
        {"Name": "VariantName", "Value": event.variant_name},
    ]
    period = max(60, event.window_minutes * 60)

    def query(query_id: str, namespace: str, name: str, stat: str, dimensions: list[dict[str, str]]) -> dict[str, Any]:
        metric = {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions}
        return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": True}

    queries = [
        query("invocations", "AWS/SageMaker", "Invocations", "Sum", dims),
        query("errors", "AWS/SageMaker", "Invocation5XXErrors", "Sum", dims),
        query("latency", "AWS/SageMaker", "ModelLatency", event.latency_stat, dims),
    ]
    if event.model_version is not None:
        version = [{"Name": VERSION_DIMENSION, "Value": event.model_version}]
        namespace = answers_namespace(event.endpoint_name)
        queries.append(query("answers", namespace, ANSWERS_METRIC, "Sum", version))
        queries.append(query("degraded", namespace, DEGRADED_METRIC, "Sum", version))
    if event.business is not None:
        b = event.business
        business_dims = [{"Name": k, "Value": v} for k, v in sorted(b.dimensions.items())]
        queries.append(query("business", b.namespace, b.name, b.stat, business_dims))
    return {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}


def traffic_figures(response: Mapping[str, Any]) -> dict[str, float | None]:
    """``GetMetricData`` results -> invocations, errors, latency (ms; SageMaker reports microseconds), business."""
    values = {r["Id"]: [float(v) for v in r.get("Values", []) if v is not None] for r in response["MetricDataResults"]}
    latency = values.get("latency", [])
    business = values.get("business", [])
    return {
        "invocations": sum(values.get("invocations", [])),
        "errors_5xx": sum(values.get("errors", [])),
        "latency_ms": max(latency) / 1000.0 if latency else None,  # the worst period: conservative
        "business": float(np.mean(business)) if business else None,
        "answers": sum(values["answers"]) if "answers" in values else None,
        "degraded": sum(values["degraded"]) if "degraded" in values else None,
    }


def post_traffic(figures: Mapping[str, float | None], event: PostTrafficEvent) -> CheckResult:
    invocations = figures.get("invocations") or 0.0
    errors = figures.get("errors_5xx") or 0.0
    latency = figures.get("latency_ms")
    rate = errors / invocations if invocations else None
    checks = [
        {
            "name": "traffic",
            "passed": invocations >= event.min_invocations,
            "detail": f"{invocations:.0f} invocations (need {event.min_invocations})",
        },
        {
            "name": "error_rate",
            "passed": rate is not None and rate <= event.max_error_rate,
            "detail": f"5xx rate {rate} (limit {event.max_error_rate})",
        },
        {
            "name": "latency",
            "passed": latency is not None and latency <= event.max_latency_p95_ms,
            "detail": f"{event.latency_stat} model latency {latency} ms (ceiling {event.max_latency_p95_ms} ms)",
        },
    ]
    if event.model_version is not None:
        answers, degraded = figures.get("answers") or 0.0, figures.get("degraded") or 0.0
        judged = judge_rate(degraded, answers, event.max_degraded_rate)
        checks.append(
            {
                "name": "degraded_answers",
                # no summary yet is no evidence: a server that cannot even log must not pass; a share
                # over the limit fails when it is significantly so (rankops.release.rate_limit)
                "passed": judged.share is not None and not judged.exceeded,
                "detail": f"model version {event.model_version}: answers from a lower level of the fallback "
                f"chain: {judged.describe(degraded, answers, event.max_degraded_rate)}",
            }
        )
    if event.business is not None:
        value = figures.get("business")
        checks.append(
            {
                "name": "business",
                "passed": value is not None and value >= event.business.minimum,
                "detail": f"{event.business.name} {value} (minimum {event.business.minimum})",
            }
        )
    return _result(checks, {**figures, "error_rate": rate})
