"""Pipeline step: a gate decision for the state machine's Choice: the evaluation job's
(event: evaluation_uri) or the off-policy job's (event: offpolicy_uri)."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from rankops.documents import read_json
    from rankops.pipeline.checks import gate_outcome, offpolicy_outcome

    if "offpolicy_uri" in event:
        return offpolicy_outcome(read_json(event["offpolicy_uri"]), event["offpolicy_uri"])
    uri = event["evaluation_uri"]
    return gate_outcome(read_json(uri), uri)
