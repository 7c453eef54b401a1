"""Pipeline step: the evaluation job's gate decision, for the state machine's Choice
(event: evaluation_uri)."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from rankops.documents import read_json
    from rankops.pipeline.checks import gate_outcome

    uri = event["evaluation_uri"]
    return gate_outcome(read_json(uri), uri)
