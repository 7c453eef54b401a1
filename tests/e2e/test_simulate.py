"""`rankops simulate` on a short run over a small demo home: steady day, then a campaign day.

What the short run can show: drift flagged on the campaign day only and on features the campaign
shifts, at most one retrain per cooldown (the trigger's real rules), and a day table whose figures
are those of the lake's feedback log and outcome events."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from rankops import background
from rankops.cli import main
from rankops.cli.common import Progress
from rankops.demo import run_demo
from rankops.feedback import store
from rankops.lake import Lake
from rankops.monitoring.drift import CONTEXT_CATEGORY
from rankops.release.ctr_judge import cohort_counts
from rankops.simulate import report
from rankops.simulate.run import Sizes, simulate, to_json
from tests.conftest import make_settings

SIZES = Sizes(requests_per_day=1000, drift_every_h=12)
# what the traffic mix does not move: item traits and within-category figures
UNAFFECTED = {"image_quality_score", "price_z_in_category", "price_deviation_from_category_mean", "category_match"}


@pytest.fixture(scope="module")
def week(tmp_path_factory, spark):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("simulate-home"))
    run_demo(settings, events=40_000, days=3, seed=5, progress=Progress(total=4))
    background.stop(settings.home)  # the simulation runs its own in-process server
    lines: list[str] = []
    days = simulate(settings, days=2, seed=5, sizes=SIZES, progress=lines.append)
    return settings, to_json(days), lines


def test_the_campaign_is_flagged_on_its_day_and_mix_free_features_never(week) -> None:  # type: ignore[no-untyped-def]
    _, days, _ = week
    steady, campaign = days
    assert steady["event"] == "steady traffic" and campaign["event"].startswith("campaign: 50% of searches -> ")
    for check in steady["checks"]:
        assert check["psi"][CONTEXT_CATEGORY] < check["threshold"], check["psi"]
    for check in campaign["checks"]:
        assert CONTEXT_CATEGORY in check["drifted"], check["psi"]
    for check in steady["checks"] + campaign["checks"]:
        assert not UNAFFECTED & set(check["drifted"]), check["psi"]


def test_at_most_one_retrain_per_cooldown(week) -> None:  # type: ignore[no-untyped-def]
    settings, days, _ = week
    cooldown = timedelta(hours=settings.aws.retrain_cooldown_hours)
    fired = [(datetime.fromisoformat(c["until"]), c["trigger"]) for d in days for c in d["checks"] if c["trigger"]]
    started = [at for at, t in fired if t["started"]]
    assert started and any(not t["started"] for _, t in fired)
    assert all(b - a >= cooldown for a, b in itertools.pairwise(started))
    for at, t in fired:
        if not t["started"]:
            last = max(s for s in started if s <= at)
            assert at - last < cooldown and t["reason"].startswith("cooldown: auto-"), t


def test_the_day_table_is_computed_from_the_logged_feedback(week, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings, days, lines = week
    lake = Lake.from_settings(settings)
    for day in days:
        f = day["figures"]
        since, until = datetime.fromisoformat(f["since"]), datetime.fromisoformat(f["until"])
        logged = store.read(lake, since, until)
        assert f["answers"] == logged.num_rows > 0
        counts = cohort_counts(logged, store.read_outcomes(lake, since).to_pandas(), 10)
        assert {v: c["clicked"] for v, c in f["cohorts"].items()} == {v: c["clicked"] for v, c in counts.items()}
        assert 0 < f["cohorts"]["champion"]["ctr"] < 1
    assert len(lines) == 2 and lines[1].startswith("day 1 (")
    text = report.table(days)
    assert (
        text.splitlines()[0].startswith("day | date") and "retrain started (auto-" in text and "held: cooldown" in text
    )
    report.plot(days, tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_a_second_run_on_the_same_days_is_refused(week, capsys) -> None:  # type: ignore[no-untyped-def]
    settings, _, _ = week
    assert main(["--home", str(settings.home), "simulate", "--days", "1"]) == 2
    assert "the feedback log already holds answers between" in capsys.readouterr().err
