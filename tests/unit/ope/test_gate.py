"""The off-policy gate's decision rule and its fallback to the uniform slice, on hand-made inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rankops.config import Settings
from rankops.ope import gate
from rankops.ope.estimators import MIN_ESS
from rankops.ope.feedback_eval import LoggedSlates
from tests.conftest import make_settings

CHAMPION = 2.0  # clicks/request: the allowed drop is 5% of it, 0.1


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(Path(tmp_path_factory.mktemp("gate")))


def comparison(low: float, high: float, min_ess: float = 500.0, uncovered: tuple[int, ...] = ()) -> dict:
    warnings = [f"position {p}: mean importance weight 0.40 (1.0 expected): ..." for p in uncovered]
    if min_ess < MIN_ESS:
        warnings.append(f"position 3: effective sample size {min_ess:.0f} of 900 rows (< {MIN_ESS:.0f})")
    lift = (low + high) / 2
    return {
        "a": {"value": CHAMPION + lift},
        "b": {"value": CHAMPION},
        "lift": lift,
        "lift_ci95": [low, high],
        "requests": 900,
        "warnings": warnings,
        "support": {"min_ess": min_ess, "uncovered_positions": list(uncovered)},
    }


def test_with_full_support_a_decisive_drop_stops_and_a_comparable_challenger_passes(settings: Settings) -> None:
    assert gate.decide(comparison(-0.5, -0.2), settings)[0] == "stop"
    assert gate.decide(comparison(-0.15, 0.03), settings)[0] == "stop"  # narrow enough to resolve the drop
    assert gate.decide(comparison(-0.08, 0.06), settings)[0] == "pass"
    assert gate.decide(comparison(-0.6, 0.4), settings)[0] == "inconclusive"  # too wide, holds 0


def test_a_thin_but_sufficient_sample_stops_only_when_the_whole_interval_is_below_the_allowed_drop(
    settings: Settings,
) -> None:
    ess = gate.MIN_ESS_CLEAR + 5
    decision, reasons = gate.decide(comparison(-1.2, -0.3, min_ess=ess), settings)
    assert decision == "stop" and "the whole interval is below the allowed drop of -0.1000" in reasons[0], reasons
    # below 0 but not below the allowed drop: weak evidence never stops a release
    assert gate.decide(comparison(-1.2, -0.05, min_ess=ess), settings)[0] == "inconclusive"
    assert gate.decide(comparison(-0.3, 0.2, min_ess=ess), settings)[0] == "inconclusive"


def test_too_thin_a_sample_or_an_uncovered_position_is_inconclusive_whatever_the_interval(settings: Settings) -> None:
    thin = gate.decide(comparison(-1.2, -0.3, min_ess=gate.MIN_ESS_CLEAR - 1), settings)
    assert thin[0] == "inconclusive" and "too little support" in thin[1][0]
    uncovered = gate.decide(comparison(-1.2, -0.3, uncovered=(2,)), settings)
    assert uncovered[0] == "inconclusive" and "position 2: mean importance weight" in uncovered[1][0]


def slates(requests: int, slate: int, seed: int = 0) -> LoggedSlates:
    """Explore answers that show the champion's order (ranked by item number, propensity 1) and
    uniform answers (a random order, propensity 1/slate); clicks fall with the item number."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(requests):
        uniform = r % 2 == 0
        order = rng.permutation(slate) if uniform else np.arange(slate)
        for pos, item in enumerate(order, start=1):
            click = float(rng.random() < 0.8 / pos * (1 - item / slate))
            rows.append((f"r{r}", pos, f"i{item}", 1 / slate if uniform else 1.0, "uniform" if uniform else "explore",
                         click, 0.0))  # fmt: skip
    frame = pd.DataFrame(
        rows, columns=["request_id", "position", "item_id", "propensity", "policy", "click", "contact"]
    )
    return LoggedSlates(frame, {}, requests, 0, {"explore": requests // 2, "uniform": requests - requests // 2})


def test_a_challenger_the_explore_answers_do_not_cover_is_judged_on_the_uniform_slice() -> None:
    logged = slates(2000, 5)
    item = logged.rows["item_id"].str[1:].astype(int).to_numpy()
    champion = -item.astype(float)
    near = gate.compare(logged, champion.copy(), champion, positions=5, n_boot=100)
    assert near["judged_on"] == ["explore", "uniform"] and not near["support"]["uncovered_positions"]
    reversed_ = gate.compare(logged, item.astype(float), champion, positions=5, n_boot=100)
    assert reversed_["judged_on"] == ["uniform"] and reversed_["requests"] == 1000
    # the explore answers show the champion's order: only the middle position agrees with the reversal
    assert reversed_["all_randomised"]["support"]["uncovered_positions"] == [1, 2, 4, 5]
    assert not reversed_["support"]["uncovered_positions"] and reversed_["lift_ci95"][1] < 0
