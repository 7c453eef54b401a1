"""The deployed state machine definition, run locally end to end on a small marketplace.

One module-scoped home goes through: a first release, a gate rejection by threshold, a
retried and a failed task, and a full shadow -> canary -> blue/green release.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from rankops import background, registry
from rankops.features import offline
from rankops.features.materialize import materialize
from rankops.lake import Lake
from rankops.pipeline.engine import LocalTaskFailed
from rankops.pipeline.local import definition_template, executable_definition, run_local
from rankops.pipeline.runner import sha
from rankops.synthetic import MarketplaceSpec, generate, write_marketplace
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def home(tmp_path_factory, spark) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("pipeline-home"))
    lake = Lake.from_settings(settings)
    write_marketplace(lake, generate(MarketplaceSpec(events=60_000, days=3, seed=21, start=date(2026, 11, 1))))
    offline.build(spark, lake, settings)
    materialize(lake, settings)
    yield settings
    background.stop(settings.home)


def visited(record: Any) -> list[str]:
    return [s.name for s in record.states]


def served_version(settings: Any) -> str:
    state = background.status(settings.home)
    assert state is not None, "the local endpoint (inference server) is running"
    with urllib.request.urlopen(f"{state['url']}/release", timeout=5) as answer:
        return str(json.loads(answer.read())["champion"])


def test_first_run_trains_registers_and_serves_a_champion(home) -> None:  # type: ignore[no-untyped-def]
    assert registry.alias_version(home, registry.CHAMPION) is None
    record = run_local(home, {"snapshot": "latest", "reason": "test"})
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    states = visited(record)
    for stage in ("CheckFeatures", "Processing", "Training", "Evaluation", "Gate", "OffPolicy", "Register", "Deploy",
                  "PromoteRegistry"):  # fmt: skip
        assert stage in states
    assert "Shadow" not in states, "nothing to compare with on the first release"
    assert registry.alias_version(home, registry.CHAMPION) == "1"
    assert served_version(home) == "1"
    assert record.template_sha == sha(definition_template()), "the runner executed the deployed text"
    assert record.definition_sha == sha(executable_definition(home)), "... with this machine's values substituted"


def test_a_threshold_in_the_input_changes_the_decision(home) -> None:  # type: ignore[no-untyped-def]
    passing = run_local(home, {"overrides": {}}, start="Evaluation", until="Gate")
    failing = run_local(home, {"overrides": {"gate": {"ndcg_floor": 0.99}}}, start="Evaluation", until="Gate")
    assert passing.status == failing.status == "SUCCEEDED"
    assert passing.output["gate"]["result"]["promote"] is True
    decision = failing.output["gate"]["result"]
    assert decision["promote"] is False and any("0.9900" in r for r in decision["reasons"])
    assert decision["overrides"] == {"gate.ndcg_floor": {"deployed": 0.3, "run": 0.99}}, "on the gate record"
    assert passing.output["gate"]["result"]["overrides"] == {}


def test_a_rejected_challenger_is_not_registered_and_the_champion_stays(home) -> None:  # type: ignore[no-untyped-def]
    record = run_local(home, {"overrides": {"gate": {"ndcg_floor": 0.99}, "training": {"seed": 3}}}, start="Training")
    assert record.status == "SUCCEEDED"
    states = visited(record)
    assert "NotPromoted" in states and "Register" not in states and "Shadow" not in states
    rejected = record.output["gate"]["result"]["version"]
    assert rejected != "1"
    assert registry.aliases(home) == {"champion": "1"}, "no challenger alias, champion untouched"
    assert served_version(home) == "1"


def test_transient_failures_are_retried_and_lasting_ones_reach_the_catch(home) -> None:  # type: ignore[no-untyped-def]
    attempts: list[str] = []
    names: list[str] = []

    def flaky(action: str, params: dict[str, Any]) -> dict[str, Any]:
        attempts.append(action)
        names.append(params["TrainingJobName"])
        if len(attempts) <= 2:
            raise LocalTaskFailed({"TrainingJobStatus": "Failed", "FailureReason": "CapacityError: try later"})
        return {"TrainingJobName": params["TrainingJobName"], "TrainingJobStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": "s3://rankops-local-artifacts/x/model.tar.gz"}}  # fmt: skip

    retried = run_local(home, {}, start="Training", until="Training", handlers={"sagemaker": flaky})
    assert retried.status == "SUCCEEDED" and attempts == ["createTrainingJob"] * 3
    assert len(set(names)) == 3, f"SageMaker never reuses a job name: each attempt has its own ({names})"

    def broken(action: str, params: dict[str, Any]) -> dict[str, Any]:
        raise LocalTaskFailed({"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: bad input"})

    failed = run_local(home, {}, start="Training", handlers={"sagemaker": broken})
    assert failed.status == "FAILED" and failed.error == "PipelineFailed"
    assert visited(failed)[-2:] == ["NotifyFailure", "Failed"]
    assert registry.alias_version(home, registry.CHAMPION) == "1", "the champion keeps serving"


BETTER = {"overrides": {"training": {"seed": 5}}}


@pytest.fixture
def tolerant_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment whose gate tolerates a 5% NDCG drop (an execution's input may not loosen it)."""
    monkeypatch.setenv("RANKOPS_GATE__MAX_NDCG_DROP_RELATIVE", "0.05")


def test_a_better_challenger_goes_through_shadow_approval_canary_and_blue_green(home, tolerant_gate) -> None:  # type: ignore[no-untyped-def]
    asked: list[dict[str, Any]] = []
    production = make_settings(home.home, pipeline={"approval_required": True})
    record = run_local(production, BETTER, start="Training", approver=lambda request: asked.append(request) or True)
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    states = visited(record)
    for stage in ("Register", "Shadow", "ShadowCheck", "Approval", "Canary", "Promote", "PromoteRegistry", "Done"):
        assert stage in states
    assert states.index("ShadowCheck") < states.index("Approval") < states.index("Canary")
    (request,) = asked
    assert request["version"] == record.output["gate"]["result"]["version"] and request["shadow"]["ok"]
    assert request["overrides"] == BETTER["overrides"], "the approver sees what the run changed"
    assert states.count("CanaryCheck") == 3, "10% -> 50% -> 100%, checked at each step"
    new = record.output["gate"]["result"]["version"]
    assert registry.aliases(home) == {"champion": new, "previous": "1"}
    assert served_version(home) == new
    shadow = record.output["shadow"]["result"]
    assert shadow["ok"] and "rank correlation" in shadow["reasons"][0]


def test_rerunning_the_same_input_changes_nothing(home, tolerant_gate) -> None:  # type: ignore[no-untyped-def]
    """Same snapshot, same configuration: training finds its version, the release is skipped."""
    champion = registry.alias_version(home, registry.CHAMPION)
    versions = len(registry.list_versions(home))
    record = run_local(home, BETTER)
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    states = visited(record)
    assert "AlreadyChampion" in states and "Register" not in states and "Shadow" not in states
    assert record.output["gate"]["result"]["version"] == champion
    assert len(registry.list_versions(home)) == versions, "no duplicate registry versions"
    assert registry.alias_version(home, registry.CHAMPION) == champion and served_version(home) == champion


def test_a_rejected_approval_rolls_the_shadow_back_and_keeps_the_champion(home, tolerant_gate) -> None:  # type: ignore[no-untyped-def]
    champion = registry.alias_version(home, registry.CHAMPION)
    production = make_settings(home.home, pipeline={"approval_required": True})
    overrides = {"overrides": {"training": {"seed": 9}}}
    record = run_local(production, overrides, start="Training", approver=lambda request: False)
    assert record.status == "FAILED"
    states = visited(record)
    assert "Approval" in states and "Canary" not in states and "Rollback" in states
    assert registry.alias_version(home, registry.CHAMPION) == champion and served_version(home) == champion
    assert registry.alias_version(home, registry.CHALLENGER) is None
