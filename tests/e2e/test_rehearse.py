"""`rankops rehearse`'s scenarios at small size: the deployed prod state machine run in AWS mode on
the world built from the synthesized templates, against the SageMaker endpoint emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rankops.rehearse import scenarios
from rankops.rehearse.session import Rehearsal, open_rehearsal
from tests.integration.conftest import prod_templates  # noqa: F401 - the synthesized prod templates

# the module fixture stages the world (Spark features, a bootstrap model): its time counts toward the
# first test, so the bound is the fixture's plus one scenario's on a loaded 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def rehearsal(prod_templates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:  # noqa: F811
    with open_rehearsal("prod", tmp_path_factory.mktemp("rehearsal"), cdk_out=prod_templates, events=12_000) as r:
        yield r


def test_first_release_replaces_the_bootstrap_model(rehearsal: Rehearsal) -> None:
    before = scenarios.agree.check(
        rehearsal.settings, rehearsal.endpoint, rehearsal.request(), rehearsal.world.client("s3")
    )
    assert before.champion_alias is None and before.lineage_champion is None, "nothing released before"
    result = scenarios.first_release(rehearsal)
    visited = [s.name for s in result.record.states]
    assert "ApproveFirstRelease" in visited, "prod asks for approval (the approver said yes)"
    assert result.agreement.agrees and result.agreement.served == (result.agreement.champion_alias,)
    assert before.served_model_data.endswith("/models/bootstrap/model.tar.gz"), "CloudFormation's bootstrap model"
    assert result.agreement.served_model_data.endswith("/output/model.tar.gz"), "now the training job's model"


def test_bad_challenger_is_stopped_and_the_champion_serves(rehearsal: Rehearsal) -> None:
    champion = scenarios.agree.check(
        rehearsal.settings, rehearsal.endpoint, rehearsal.request(), rehearsal.world.client("s3")
    ).champion_alias
    result = scenarios.bad_challenger(rehearsal)
    assert result.notes["challenger"] != champion
    assert result.agreement.served == (champion,) and result.agreement.challenger_alias is None


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
