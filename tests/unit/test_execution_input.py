"""What a pipeline execution's input may change: the allow-list, checked against the deployed
settings, and the deployed definition's Configure states dropping everything else."""

from __future__ import annotations

import pytest

from rankops.config import Settings
from rankops.errors import ConfigError
from rankops.pipeline.execution_input import check_input, checked_overrides
from rankops.pipeline.local import run_local


def test_training_knobs_and_a_stricter_gate_are_allowed_and_recorded(settings: Settings) -> None:
    record = checked_overrides(
        {"training": {"seed": 7, "params": {"num_leaves": 63}}, "gate": {"ndcg_floor": 0.5}}, settings
    )
    assert record == {
        "gate.ndcg_floor": {"deployed": settings.gate.ndcg_floor, "run": 0.5},
        "training.params.num_leaves": {"deployed": 31, "run": 63},
        "training.seed": {"deployed": 42, "run": 7},
    }
    tolerance = settings.gate.max_ndcg_drop_relative
    assert checked_overrides({"gate": {"max_ndcg_drop_relative": tolerance / 2}}, settings)
    assert checked_overrides({}, settings) == {}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gate": {"ndcg_floor": 0.01}}, "would loosen the gate (below the deployed"),
        ({"gate": {"max_ndcg_drop_relative": 0.5}}, "would loosen the gate (above the deployed"),
        ({"gate": {"max_coverage_drop_relative": 0.9}}, "would loosen the gate (above the deployed"),
        ({"gate": {"on_pass": "champion"}}, "'gate.on_pass' is not allowed"),
        ({"release": {"canary_steps": [1.0]}}, "'release.canary_steps' is not allowed"),
        ({"training": {"holdout_fraction": 0.01}}, "'training.holdout_fraction' is not allowed"),
        ({"gate": {"ndcg_floor": "high"}}, "must be a number"),
    ],
)
def test_anything_else_is_refused_naming_the_setting(settings: Settings, overrides: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        checked_overrides(overrides, settings)


def test_input_keys_are_an_allow_list() -> None:
    check_input({"snapshot": "latest", "reason": "drift", "refresh_features": True, "overrides": {}})
    with pytest.raises(ConfigError, match=r"\['canary_steps', 'soak_seconds'\] cannot be set per run"):
        check_input({"soak_seconds": 0, "canary_steps": [1.0], "reason": "x"})


def test_the_deployed_definition_keeps_only_allowed_input(settings: Settings) -> None:
    """StartExecution skips the CLI: the definition itself drops soak/canary input (moto's interpreter)."""
    record = run_local(
        settings,
        {"snapshot": "2026-11-01T00:00:00Z", "soak_seconds": 0, "canary_steps": [1.0], "overrides": {"x": 1}},
        until="AllowInput",
    )
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    run = record.output["run"]
    assert run["soak_seconds"] == 600 and run["canary_steps"] == [0.1, 0.5, 1.0]
    assert run["snapshot"] == "2026-11-01T00:00:00Z" and run["reason"] == "manual" and run["overrides"] == {"x": 1}
    assert set(record.output) == {"run", "execution", "job_id", "approval_required"}
