"""Pre-traffic hook: golden requests against the new variant must rank sanely and fast.

Event: ``{"endpoint_name": "...", "target_variant": "challenger", "max_latency_p95_ms": 100,
"golden_requests": [{"name": "...", "request": {...}, "expect": {"top": "i-1", "above": [["i-1", "i-9"]]}}]}``.
Returns ``{"passed": bool, "checks": [...], "figures": {...}}`` for the state machine's Choice.
Runtime: standard library, boto3, NumPy only.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from rankops.release.checks import PreTrafficEvent, run_pre_traffic


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    parsed = PreTrafficEvent.from_event(event)
    runtime = boto3.client("sagemaker-runtime")

    def invoke(request: dict[str, Any]) -> tuple[dict[str, Any], float]:
        kwargs: dict[str, Any] = {
            "EndpointName": parsed.endpoint_name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(request).encode(),
        }
        if parsed.target_variant:
            kwargs["TargetVariant"] = parsed.target_variant
        started = time.perf_counter()
        answer = runtime.invoke_endpoint(**kwargs)
        body = answer["Body"].read()
        return json.loads(body), (time.perf_counter() - started) * 1000.0

    return run_pre_traffic(parsed.golden, invoke, parsed.max_latency_p95_ms).as_dict()
