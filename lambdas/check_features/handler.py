"""Pipeline step: are the features fresh and validated? (event: status_uri, snapshot)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from rankops.documents import read_json
    from rankops.pipeline.checks import feature_readiness

    return feature_readiness(read_json(event["status_uri"]), event.get("snapshot"), datetime.now(UTC))
