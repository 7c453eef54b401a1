"""What an execution's input may change, checked against the deployed configuration.

Whoever may start a pipeline execution must not be able to weaken a release: the input
names the snapshot, a reason, whether to refresh features, and ``overrides`` of the
configuration the jobs run with, and nothing else (the canary steps and soak times are
the deployment's). Overrides are limited to training knobs, which the gate then judges,
and to gate thresholds made *stricter* than the deployed ones. The CLI checks an input
before it starts a run; every job checks its ``--overrides`` again against the settings
it was deployed with (an execution started with ``StartExecution`` skips the CLI), and
the evaluation job writes what was overridden into the gate record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from rankops.config import Settings
from rankops.errors import ConfigError

INPUT_KEYS = ("snapshot", "reason", "refresh_features", "overrides")

Rule = Literal["any", "not_below", "not_above"]
# dotted setting -> how a run may change it; "training.params." covers every LightGBM parameter
OVERRIDABLE: dict[str, Rule] = {
    "training.params.": "any",
    "training.num_boost_round": "any",
    "training.early_stopping_rounds": "any",
    "training.seed": "any",
    "training.valid_fraction": "any",
    "gate.ndcg_floor": "not_below",  # a floor may only rise
    "gate.max_ndcg_drop_relative": "not_above",  # a tolerated drop may only shrink
    "gate.max_coverage_drop_relative": "not_above",
}


def check_input(execution_input: Mapping[str, Any]) -> None:
    """Refuse input keys other than :data:`INPUT_KEYS` (e.g. ``canary_steps``, ``soak_seconds``)."""
    unknown = sorted(set(execution_input) - set(INPUT_KEYS))
    if unknown:
        raise ConfigError(
            f"execution input {unknown} cannot be set per run (only {', '.join(INPUT_KEYS)}); canary steps, "
            "soak times and approvals come from the deployment"
        )


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not path.startswith("training.params."):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _deployed(settings: Settings, path: str) -> Any:
    node: Any = settings
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else getattr(node, part, None)
    return node


def _rule(path: str) -> Rule | None:
    if path in OVERRIDABLE:
        return OVERRIDABLE[path]
    return next((r for p, r in OVERRIDABLE.items() if p.endswith(".") and path.startswith(p)), None)


def checked_overrides(overrides: Mapping[str, Any], deployed: Settings) -> dict[str, dict[str, Any]]:
    """``{setting: {"deployed": old, "run": new}}`` for every override, or ``ConfigError`` naming the
    first one that is not allowed or that would loosen a gate threshold below the deployed value."""
    record: dict[str, dict[str, Any]] = {}
    for path, value in sorted(_flatten(overrides).items()):
        rule = _rule(path)
        if rule is None:
            allowed = ", ".join(p + ("*" if p.endswith(".") else "") for p in OVERRIDABLE)
            raise ConfigError(f"override {path!r} is not allowed in a pipeline run; allowed: {allowed}")
        old = _deployed(deployed, path)
        if rule != "any":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"override {path}={value!r} must be a number")
            if (rule == "not_below" and value < old) or (rule == "not_above" and value > old):
                bound = "below" if rule == "not_below" else "above"
                raise ConfigError(
                    f"override {path}={value} would loosen the gate ({bound} the deployed {old}); "
                    "a run may only make it stricter"
                )
        record[path] = {"deployed": old, "run": value}
    return record
