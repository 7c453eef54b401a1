"""`rankops simulate` on a short run over a small demo home: a steady day, then a campaign.

What the short run shows, each asserted below: drift flagged on the campaign's windows only and on
features the campaign can shift (steady windows, compared with the serving reference, flag
nothing); one retrain started (the trigger's real rules hold the rest); that retrain through the
local pipeline to a promotion whose canary CTR lift is reported with its interval, judged on the
simulated users' logged clicks; the shuffled-label challenger stopped at the off-policy gate before
any user sees it (judged on the uniform slice, the whole interval below the allowed drop); and a
day table whose figures are those of the lake's feedback log and outcome events."""

from __future__ import annotations

from datetime import datetime

import pytest

from rankops import background, registry
from rankops.cli import main
from rankops.cli.common import Progress
from rankops.demo import run_demo
from rankops.feedback import store
from rankops.lake import Lake
from rankops.monitoring.drift import CONTEXT_CATEGORY
from rankops.ope import gate
from rankops.release.ctr_judge import cohort_counts
from rankops.simulate import report
from rankops.simulate.run import Sizes, simulate, to_json
from tests.conftest import make_settings

# the module's fixture runs the demo and four simulated days with two pipeline runs: minutes on a
# quiet machine, more than pytest's default 600 s on a loaded one
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
DAYS, BAD_DAY = 4, 2
SIZES = Sizes(requests_per_day=2000, drift_every_h=12, bad_day=BAD_DAY)
# what the traffic mix does not move: item traits and within-category figures
UNAFFECTED = {"image_quality_score", "price_z_in_category", "price_deviation_from_category_mean", "category_match"}


@pytest.fixture(scope="module")
def week(tmp_path_factory, spark):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("simulate-home"))
    run_demo(settings, events=40_000, days=3, seed=5, progress=Progress(total=4))
    background.stop(settings.home)  # the simulation runs its own in-process server
    first_champion = registry.alias_version(settings, registry.CHAMPION)
    lines: list[str] = []
    days = simulate(settings, days=DAYS, seed=5, sizes=SIZES, progress=lines.append)
    return settings, to_json(days), lines, first_champion


def releases(days, action):  # type: ignore[no-untyped-def]
    return [r for d in days for r in d["releases"] if r["action"] == action]


def test_drift_is_flagged_on_the_campaign_only_and_on_features_it_shifts(week) -> None:  # type: ignore[no-untyped-def]
    _, days, _, _ = week
    assert days[0]["event"] == "steady traffic" and days[1]["event"].startswith("campaign: 50% of searches -> ")
    reference, *steady = days[0]["checks"]
    assert reference["reference_window"] and steady, "the first window is the serving reference"
    for check in steady:
        assert check["drifted"] == [], check["psi"]
    campaign = days[1]["checks"][0]
    assert CONTEXT_CATEGORY in campaign["drifted"], campaign["psi"]
    for check in [c for d in days for c in d["checks"]]:
        assert not UNAFFECTED & set(check["drifted"]), check["psi"]


def test_one_retrain_and_the_trigger_holds_the_rest(week) -> None:  # type: ignore[no-untyped-def]
    _, days, _, _ = week
    fired = [c["trigger"] for d in days for c in d["checks"] if c["trigger"]]
    assert sum(t["started"] for t in fired) == 1, fired
    retrains = [p for p in releases(days, "pipeline") if p["what"].startswith("retrain auto-")]
    assert len(retrains) == 1


def test_the_retrain_is_promoted_on_a_canary_ctr_lift_with_its_interval(week) -> None:  # type: ignore[no-untyped-def]
    settings, days, _, first = week
    (retrain,) = [p for p in releases(days, "pipeline") if p["what"].startswith("retrain auto-")]
    assert retrain["status"] == "SUCCEEDED" and retrain["stopped_by"] is None, retrain
    for state in ("Gate", "OffPolicy", "ShadowCheck", "Canary", "Promote", "Released"):
        assert state in retrain["states"], retrain["states"]
    checks = releases(days, "check")
    shadow = [c for c in checks if c["mode"] == "shadow" and c["action_taken"] == "advance"]
    assert shadow and shadow[0]["shadow"]["kl_divergence"] is not None and shadow[0]["shadow"]["spearman_mean"]
    judged = [c for c in checks if c["mode"] == "canary" and report.ctr_lift(c) and c["action_taken"] == "advance"]
    assert {c["share"] for c in judged} >= {0.1, 0.5}, "the 10% and 50% steps were judged on clicks"
    for c in judged:
        lift = report.ctr_lift(c)
        assert lift is not None
        low, high = lift["interval"]
        assert low < lift["difference"] < high and lift["canary"]["answers"] >= lift["n_required"]
    new = retrain["gate"]["version"]
    assert new != first and registry.alias_version(settings, registry.CHAMPION) == new
    assert "CTR lift " in report.table(days) and " [" in report.table(days)


def test_the_shuffled_label_challenger_is_stopped_at_the_off_policy_gate(week) -> None:  # type: ignore[no-untyped-def]
    settings, days, _, _ = week
    (bad,) = [p for p in releases(days, "pipeline") if p["what"].startswith("bad challenger")]
    assert bad["stopped_by"] == "off-policy gate", bad
    assert bad["offpolicy"]["decision"] == "stop" and bad["offpolicy"]["stop"], bad["offpolicy"]
    assert "ShadowCheck" not in bad["states"] and "Register" not in bad["states"], "no user saw it"
    version = bad["what"].split()[2].removeprefix("v")
    lake = Lake.from_settings(settings)
    record = lake.read_json(lake.uri("artifacts", "gate", "simulate", f"v{version}", "record.json"))["offpolicy"]
    estimate = record["estimate"]
    # it ranks first what the champion's explore answers never show there: judged on the uniform slice
    assert estimate["judged_on"] == ["uniform"] and estimate["all_randomised"]["support"]["uncovered_positions"]
    high = estimate["lift_ci95"][1]
    assert high < -settings.gate.offpolicy_max_drop_relative * estimate["b"]["value"], estimate
    assert estimate["support"]["min_ess"] >= gate.MIN_ESS_CLEAR and not estimate["support"]["uncovered_positions"]
    assert registry.alias_version(settings, registry.CHAMPION) != version
    assert [r for r in releases(days, "canary") if r.get("challenger") == version] == []
    assert "STOPPED by the off-policy gate" in report.table(days)


def test_the_day_table_is_computed_from_the_logged_feedback(week, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings, days, lines, _ = week
    lake = Lake.from_settings(settings)
    for day in days:
        f = day["figures"]
        since, until = datetime.fromisoformat(f["since"]), datetime.fromisoformat(f["until"])
        logged = store.read(lake, since, until)
        assert f["answers"] == logged.num_rows > 0
        counts = cohort_counts(logged, store.read_outcomes(lake, since).to_pandas(), 10)
        assert {v: c["clicked"] for v, c in f["cohorts"].items()} == {v: c["clicked"] for v, c in counts.items()}
        assert 0 < f["cohorts"]["champion"]["ctr"] < 1 and f["p99_ms"] > 0
    assert len(lines) == DAYS and lines[1].startswith("day 1 (")
    text = report.table(days)
    assert text.splitlines()[0].startswith("day | date") and "p99 ms" in text.splitlines()[0]
    report.plot(days, tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_a_second_run_on_the_same_days_is_refused(week, capsys) -> None:  # type: ignore[no-untyped-def]
    settings, _, _, _ = week
    assert main(["--home", str(settings.home), "simulate", "--days", "1"]) == 2
    assert "the feedback log already holds answers between" in capsys.readouterr().err
