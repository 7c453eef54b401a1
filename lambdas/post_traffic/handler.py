"""Post-traffic hook: after traffic moved, the variant's CloudWatch figures must be healthy.

Event: ``{"endpoint_name": "...", "variant_name": "challenger", "window_minutes": 10,
"max_error_rate": 0.001, "max_latency_p95_ms": 100, "min_invocations": 100,
"business_metric": {"namespace": "rankops", "name": "ClickThroughRate", "dimensions": {...}, "minimum": 0.05}}``.
Returns ``{"passed": bool, "checks": [...], "figures": {...}}``. Runtime: standard library, boto3, NumPy only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from rankops.release.checks import PostTrafficEvent, metric_data_request, post_traffic, traffic_figures


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    parsed = PostTrafficEvent.from_event(event)
    end = datetime.now(UTC)
    start = end - timedelta(minutes=parsed.window_minutes)
    cloudwatch = boto3.client("cloudwatch")
    figures = traffic_figures(cloudwatch.get_metric_data(**metric_data_request(parsed, start, end)))
    return post_traffic(figures, parsed).as_dict()
