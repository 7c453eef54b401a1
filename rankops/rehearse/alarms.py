"""Evaluate CloudWatch alarms (as moto stores them) against the metrics in moto CloudWatch.

moto keeps alarms but never evaluates them. SageMaker's auto-rollback watches alarms during a
deployment, so the emulator evaluates the alarms it is told to watch, on the emulated clock: the
last ``EvaluationPeriods`` periods ending now, ``DatapointsToAlarm`` of them breaching -> ALARM,
missing data per ``TreatMissingData``. Percentile statistics (``p99``) are not evaluated: moto's
GetMetricStatistics ignores ``ExtendedStatistics``, so such an alarm sees missing data. Metric
math is the subset our alarms use (``IF``, comparisons, arithmetic), parsed with :mod:`ast`,
never ``eval``'d.
"""

from __future__ import annotations

import ast
import operator
from datetime import datetime, timedelta
from typing import Any

_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: a / b if b else 0.0,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
}
_COMPARE = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def _math(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _math(node.body, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_math(node.left, values), _math(node.right, values)))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _OPS:
        return float(_OPS[type(node.ops[0])](_math(node.left, values), _math(node.comparators[0], values)))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "IF" and len(node.args) == 3:
        cond, then, otherwise = node.args
        return _math(then, values) if _math(cond, values) else _math(otherwise, values)
    raise ValueError(f"metric math the rehearsal does not evaluate: {ast.dump(node)}")


def _stat(cw: Any, metric: dict[str, Any], stat: str, period: int, start: datetime, end: datetime) -> float | None:
    args: dict[str, Any] = {
        "Namespace": metric["Namespace"],
        "MetricName": metric["MetricName"],
        "Dimensions": metric.get("Dimensions", []),
        "StartTime": start,
        "EndTime": end,
        "Period": period,
    }
    if stat.startswith("p"):  # moto ignores ExtendedStatistics: a percentile alarm sees missing data
        points = cw.get_metric_statistics(**args, ExtendedStatistics=[stat])["Datapoints"]
        return max((p["ExtendedStatistics"][stat] for p in points if "ExtendedStatistics" in p), default=None)
    points = cw.get_metric_statistics(**args, Statistics=[stat])["Datapoints"]
    return sum(p[stat] for p in points) if points and stat == "Sum" else (points[0][stat] if points else None)


def _value(cw: Any, alarm: dict[str, Any], start: datetime, end: datetime) -> float | None:
    if not alarm.get("Metrics"):
        stat = alarm.get("ExtendedStatistic") or alarm["Statistic"]
        return _stat(cw, alarm, stat, int(alarm["Period"]), start, end)
    values: dict[str, float] = {}
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            ms = query["MetricStat"]
            got = _stat(cw, ms["Metric"], ms["Stat"], int(ms["Period"]), start, end)
            values[query["Id"]] = 0.0 if got is None else got
    (result,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True) and "Expression" in q]
    return _math(ast.parse(result["Expression"], mode="eval"), values) if any(values.values()) else None


def evaluate(cw: Any, alarm: dict[str, Any], now: datetime) -> str:
    """``ALARM`` or ``OK`` for ``alarm`` (a DescribeAlarms MetricAlarm) at emulated time ``now``."""
    stats = [q["MetricStat"]["Period"] for q in alarm.get("Metrics") or [] if "MetricStat" in q]
    period = int(alarm.get("Period") or stats[0])
    breaching = 0
    for i in range(int(alarm["EvaluationPeriods"])):
        end = now - timedelta(seconds=i * period)
        value = _value(cw, alarm, end - timedelta(seconds=period), end)
        if value is None:
            breaching += alarm.get("TreatMissingData") == "breaching"
        else:
            breaching += _COMPARE[alarm["ComparisonOperator"]](value, alarm["Threshold"])
    return "ALARM" if breaching >= int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"]) else "OK"
