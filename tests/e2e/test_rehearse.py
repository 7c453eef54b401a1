"""`rankops rehearse`'s scenarios at small size: the deployed prod state machine run in AWS mode on
the world built from the synthesized templates, against the SageMaker endpoint emulator. The tests
run in the order of ``rankops rehearse --scenario all`` on one rehearsal (each release needs the one
before it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rankops import registry
from rankops.rehearse import scenario_release, scenarios
from rankops.rehearse.session import Rehearsal, open_rehearsal
from tests.integration.conftest import prod_templates  # noqa: F401 - the synthesized prod templates

# the module fixture stages the world (Spark features, a bootstrap model): its time counts toward the
# first test, so the bound is the fixture's plus one scenario's on a loaded 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def rehearsal(prod_templates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:  # noqa: F811
    with open_rehearsal("prod", tmp_path_factory.mktemp("rehearsal"), cdk_out=prod_templates, events=12_000) as r:
        yield r


def _now(rehearsal: Rehearsal) -> scenarios.agree.Agreement:
    return scenarios.agree.check(
        rehearsal.settings, rehearsal.endpoint, rehearsal.request(), rehearsal.world.client("s3")
    )


def test_a_release_scenario_without_a_champion_fails_naming_scenario_and_state(rehearsal: Rehearsal) -> None:
    with pytest.raises(scenarios.ScenarioFailed) as failed:
        scenario_release.full_release(rehearsal)
    assert (failed.value.scenario, failed.value.state) == ("full-release", "(before the run)")
    assert str(failed.value).startswith("scenario full-release: state (before the run): needs a champion")


def test_first_release_replaces_the_bootstrap_model(rehearsal: Rehearsal) -> None:
    before = _now(rehearsal)
    assert before.champion_alias is None and before.lineage_champion is None, "nothing released before"
    result = scenarios.first_release(rehearsal)
    visited = [s.name for s in result.record.states]
    assert "ApproveFirstRelease" in visited, "prod asks for approval (the approver said yes)"
    assert result.agreement.agrees and result.agreement.served == (result.agreement.champion_alias,)
    assert before.served_model_data.endswith("/models/bootstrap/model.tar.gz"), "CloudFormation's bootstrap model"
    assert result.agreement.served_model_data.endswith("/output/model.tar.gz"), "now the training job's model"


def test_full_release_shadow_approval_sticky_canary_guarded_promotion(rehearsal: Rehearsal) -> None:
    old = _now(rehearsal).champion_alias
    result = scenario_release.full_release(rehearsal)
    notes, new = result.notes, result.notes["challenger"]
    assert new != old and notes["champion_before"] == old
    visited = [s.name for s in result.record.states]
    for state in ("ShadowCheck", "Approval", "Canary", "Promote", "PromoteRegistry"):
        assert state in visited
    # seam 6: the shadow was judged on scores from both variants' data capture
    shadow = notes["shadow"]
    assert shadow["requests"] > 0 and shadow["spearman_mean"] is not None and shadow["kl_divergence"] is not None
    # seam 5: sticky callers; nobody who got the challenger ever got the champion again
    assert notes["users_on_challenger"] > 0 and notes["went_back"] == []
    # seam 4: the promotion was a blue/green update watched by the endpoint's alarms
    assert any(a.endswith("-5xx") for a in notes["alarms"])
    assert result.agreement.agrees and result.agreement.served == (new,)
    assert (result.agreement.champion_alias, result.agreement.challenger_alias) == (new, None)
    assert registry.aliases(rehearsal.settings)[registry.PREVIOUS] == old, "the old champion is kept"


def test_bad_challenger_is_stopped_and_the_champion_serves(rehearsal: Rehearsal) -> None:
    champion = _now(rehearsal).champion_alias
    result = scenarios.bad_challenger(rehearsal)
    assert result.notes["challenger"] != champion
    assert result.agreement.served == (champion,) and result.agreement.challenger_alias is None


def test_alarm_after_promote_rolls_back_to_the_champion(rehearsal: Rehearsal) -> None:
    champion = _now(rehearsal).champion_alias
    result = scenario_release.alarm_after_promote(rehearsal)
    visited = [s.name for s in result.record.states]
    assert result.record.status == "FAILED" and "PromoteRegistry" not in visited
    assert visited.index("Promote") < visited.index("PromotedFailed") < visited.index("Rollback")
    # SageMaker-style auto-rollback, driven by the 5xx the crashed fleet's answers published (seam 4)
    assert "-5xx" in result.notes["rolled_back_by"] and result.notes["crashed"]
    alarm = rehearsal.world.client("cloudwatch").describe_alarms(AlarmNamePrefix="rankops-prod-p1-endpoint-5xx")
    assert alarm["MetricAlarms"][0]["StateValue"] == "ALARM"
    # seam 3: the pipeline's Rollback restored the config Baseline recorded (checked in the scenario)
    assert result.agreement.agrees and result.agreement.served == (champion,)
    assert (result.agreement.champion_alias, result.agreement.challenger_alias) == (champion, None)


def test_retrain_trigger_drift_alarm_starts_exactly_one_execution(rehearsal: Rehearsal) -> None:
    result = scenarios.SCENARIOS["retrain-trigger"](rehearsal, None)
    notes = result.notes
    assert "query_category" in notes["drifted"], "the campaign moved the searches' category"
    assert notes["alarm"].endswith("p2-feature-drift"), "the template's drift alarm watches what the job publishes"
    answers = [d["answer"] for d in notes["deliveries"]]
    assert {d["function"] for d in notes["deliveries"]} == {f"{rehearsal.world.prefix}-retrain-trigger"}
    assert [a["started"] for a in answers] == [True, False, False], answers
    assert answers[1]["reason"] == "an execution is running", "the redelivered event while the retrain runs"
    assert answers[2]["reason"].startswith("cooldown: auto-"), "the alarm re-entering ALARM an hour later"
    assert notes["execution"] == answers[0]["name"] and notes["execution"].startswith("auto-")
    assert result.record.status == "SUCCEEDED" and "Gate" in [s.name for s in result.record.states]
    assert result.agreement.agrees
