"""Pipeline step: one release action (deploy, shadow, canary, promote, rollback, check) on the
SageMaker endpoint, or on the local server when the endpoint is ``local:<home>``."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from rankops.release.endpoint import release_step

    return release_step(event)
