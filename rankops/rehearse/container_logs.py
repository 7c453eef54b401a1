"""What CloudWatch Logs does with an endpoint container's stdout, done for the emulator.

SageMaker ships every line a variant's container writes to the log group
``/aws/sagemaker/Endpoints/<endpoint>`` (stream ``<variant>/<instance>``), and CloudWatch applies the
group's metric filters to each event. The servers' answer summaries
(:mod:`rankops.monitoring.answer_summary`) become ``Answers`` and ``DegradedAnswers`` that way: the
degraded-answers alarm and the release checks' ``degraded_answers`` judge them. moto stores the
metric filters the templates define but never applies them, so the emulator ships each line with
``PutLogEvents`` and applies the filters itself, with the log event's (emulated) timestamp.

Filter patterns: the JSON form the templates use, ``{ $.a = "x" && $.b > 1 }`` (selectors
``$.a.b``, operators ``= != > >= < <=``, string or number values); any other pattern is an error
naming it, so a filter the rehearsal cannot apply never silently counts nothing.
"""

from __future__ import annotations

import json
import operator
import re
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

_CONDITION = re.compile(r'^\s*(\$(?:\.[A-Za-z_][\w-]*)+)\s*(=|!=|>=|<=|>|<)\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)\s*$')
_OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
Condition = tuple[str, str, Any]


def parse_pattern(pattern: str) -> list[Condition]:
    """``{ $.a = "x" && ... }`` -> [(selector, operator, value)]."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"metric filter pattern the rehearsal does not apply (not a JSON pattern): {pattern!r}")
    conditions = []
    for part in text[1:-1].split("&&"):
        match = _CONDITION.match(part)
        if not match:
            raise ValueError(f"metric filter pattern the rehearsal does not apply: {pattern!r} (at {part.strip()!r})")
        selector, op, raw = match.groups()
        conditions.append((selector, op, json.loads(raw)))
    return conditions


def select(document: Any, selector: str) -> Any:
    """The value at ``$.a.b`` in ``document`` (None when absent)."""
    value = document
    for key in selector.removeprefix("$.").split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def matches(conditions: list[Condition], document: Any) -> bool:
    for selector, op, expected in conditions:
        value = select(document, selector)
        if value is None:
            return False
        if isinstance(expected, str) != isinstance(value, str):
            return False
        if not _OPS[op](value, expected):
            return False
    return True


def metric_data(filters: list[dict[str, Any]], message: str, timestamp: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) for each metric filter (a DescribeMetricFilters entry) ``message`` matches."""
    try:
        document = json.loads(message)
    except ValueError:
        return []  # a JSON pattern matches JSON events only
    found = []
    for metric_filter in filters:
        if not matches(parse_pattern(metric_filter["filterPattern"]), document):
            continue
        for t in metric_filter["metricTransformations"]:
            raw = t["metricValue"]
            value = select(document, raw) if str(raw).startswith("$.") else raw
            if value is None:
                value = t.get("defaultValue")
            if value is None:
                continue
            datum: dict[str, Any] = {"MetricName": t["metricName"], "Value": float(value), "Timestamp": timestamp}
            dims = {
                k: select(document, v) if str(v).startswith("$.") else v for k, v in (t.get("dimensions") or {}).items()
            }
            if any(v is None for v in dims.values()):
                continue  # CloudWatch drops a datum whose dimension selector finds nothing
            if dims:
                datum["Dimensions"] = [{"Name": k, "Value": str(v)} for k, v in sorted(dims.items())]
            found.append((str(t["metricNamespace"]), datum))
    return found


def log_group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


class LogShipper:
    """One endpoint's container logs: ``PutLogEvents`` and the log group's metric filters applied.
    A log group the world has not created (no template defines it) is not written to, as
    SageMaker would create it with no filters: lines stay in the variant's ``serve.log`` only."""

    def __init__(self, logs: Any, cloudwatch: Any) -> None:
        self.logs, self.cw = logs, cloudwatch
        self._filters: dict[str, list[dict[str, Any]] | None] = {}
        self._streams: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.datapoints = 0  # metric datapoints the filters made so far (tests wait on ``changed`` for them)
        self.changed = threading.Condition()

    def _group_filters(self, group: str) -> list[dict[str, Any]] | None:
        with self._lock:
            if group not in self._filters:
                exists = any(g["logGroupName"] == group for g in self.logs.describe_log_groups(
                    logGroupNamePrefix=group)["logGroups"])  # fmt: skip
                self._filters[group] = (
                    self.logs.describe_metric_filters(logGroupName=group)["metricFilters"] if exists else None
                )
            return self._filters[group]

    def ship(self, endpoint: str, stream: str, line: str, timestamp: datetime) -> int:
        """One line of a variant's output; returns how many metric datapoints it became."""
        group = log_group(endpoint)
        filters = self._group_filters(group)
        if filters is None or not line.strip():
            return 0
        with self._lock:
            if (group, stream) not in self._streams:
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self._streams.add((group, stream))
        event = {"timestamp": int(timestamp.timestamp() * 1000), "message": line.rstrip("\n")}
        self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[event])
        data = metric_data(filters, line, timestamp)
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in data:
            by_namespace.setdefault(namespace, []).append(datum)
        for namespace, items in by_namespace.items():
            self.cw.put_metric_data(Namespace=namespace, MetricData=items)
        with self.changed:
            self.datapoints += len(data)
            self.changed.notify_all()
        return len(data)

    def wait_for_datapoints(self, count: int, timeout_s: float) -> bool:
        """Until the filters made ``count`` datapoints (an event, not a sleep); False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: self.datapoints >= count, timeout=timeout_s)


def scaled_environment(environment: Mapping[str, str], factor: float) -> dict[str, str]:
    """The container environment with the answer summary's interval on the emulated clock (a 60 s
    summary every 0.6 s at factor 0.01), so its lines land in the emulated periods they cover."""
    from rankops.config_sections import ServingConfig

    key = "RANKOPS_SERVING__ANSWER_LOG_INTERVAL_S"
    interval = float(environment.get(key, ServingConfig.model_fields["answer_log_interval_s"].default))
    return {**environment, key: str(interval * factor)}
