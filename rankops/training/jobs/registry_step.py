"""The pipeline's registry steps: register a gated challenger, promote it, or reject it.

Each step moves aliases and appends one event to the version's lineage record, so the
record reads dataset -> features -> run -> model -> gate -> registered -> released (or
rolled back). Every step is idempotent: re-running a pipeline execution (or the same
snapshot) leaves the registry as one run would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from rankops import lineage, registry
from rankops.errors import ModelError

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake

Action = Literal["register", "promote", "reject"]
ACTIONS: tuple[str, ...] = ("register", "promote", "reject")


def run(settings: Settings, lake: Lake, action: Action, version: str, execution_id: str = "") -> dict[str, Any]:
    """Apply ``action`` to ``version`` of the ranker; returns the aliases before and after."""
    name = settings.mlflow.model_name
    client, _ = registry.connect(settings)
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise ModelError(f"model {name!r} has no version {version!r}; the training job registers it") from None
    before = registry.aliases(settings)
    if action == "register":
        if before.get(registry.CHAMPION) != version:
            registry.set_alias(settings, registry.CHALLENGER, version)
    elif action == "promote":
        registry.promote(settings, version)
    elif action == "reject":
        if before.get(registry.CHALLENGER) == version:
            registry.delete_alias(settings, registry.CHALLENGER)
    else:
        raise ModelError(f"unknown registry action {action!r}; expected one of {', '.join(ACTIONS)}")
    after = registry.aliases(settings)
    event = {"register": "registered", "promote": "released", "reject": "rejected"}[action]
    lineage.append_event(
        lake.zone_uri("artifacts"),
        name,
        version,
        event,
        {"pipeline_execution_id": execution_id, "aliases_before": before, "aliases_after": after},
    )
    return {"action": action, "version": version, "aliases_before": before, "aliases_after": after}
