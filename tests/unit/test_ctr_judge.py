"""The canary's outcome test with known numbers: the horizon from the minimum detectable effect,
the z statistic and interval, and the hold / advance / rollback rules (rankops.release.ctr_judge)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from rankops.feedback.record import to_table
from rankops.release.ctr_judge import cohort_counts, combine, judge, judge_cohorts, required_answers, with_outcomes
from rankops.release.decisions import Decision

Z_975, Z_80 = 1.959963984540054, 0.8416212335729143  # standard normal quantiles (tables)
KNOWN = {"mde": 0.02, "alpha": 0.05, "power": 0.8}


def test_the_horizon_follows_from_the_minimum_detectable_effect() -> None:
    # (z(0.975) + z(0.8))^2 * 0.1 * 0.9 * 2 / 0.02^2 = 3531.99...
    assert required_answers(0.10, 0.02, 0.05, 0.8) == 3532
    assert required_answers(0.10, 0.02, 0.05, 0.8) == math.ceil((Z_975 + Z_80) ** 2 * 0.09 * 2 / 0.0004)
    # a 10% canary (nine control answers per canary answer) needs fewer canary answers than an even split
    assert required_answers(0.10, 0.02, 0.05, 0.8, ratio=9) == math.ceil((Z_975 + Z_80) ** 2 * 0.09 * (10 / 9) / 0.0004)
    assert required_answers(0.10, 0.01, 0.05, 0.8) == 14128, "half the effect, four times the answers"
    with pytest.raises(ValueError, match="need 0 < mde"):
        required_answers(0.1, 0.0, 0.05, 0.8)


def test_a_significant_loss_past_the_horizon_rolls_back_with_its_evidence() -> None:
    verdict = judge("ctr", (4000, 400), (4000, 300), **KNOWN)
    se = math.sqrt(0.1 * 0.9 / 4000 + 0.075 * 0.925 / 4000)
    assert verdict.action == "rollback" and "significant loss" in verdict.reason
    ev = verdict.evidence
    assert ev["difference"] == pytest.approx(-0.025)
    assert ev["z"] == pytest.approx(-3.96059, abs=1e-4) and ev["z"] == pytest.approx(-0.025 / se)
    assert ev["p_value"] == pytest.approx(7.4765e-05, rel=1e-3)
    assert ev["interval"] == pytest.approx([-0.025 - Z_975 * se, -0.025 + Z_975 * se])
    assert ev["n_required"] == 3532
    assert (ev["control"], ev["canary"]) == (
        {"answers": 4000, "successes": 400, "rate": 0.1},
        {"answers": 4000, "successes": 300, "rate": 0.075},
    )
    assert ev["test"].startswith("two-proportion z-test")


def test_before_the_horizon_even_a_large_difference_holds() -> None:
    verdict = judge("ctr", (4000, 400), (500, 10), **KNOWN)  # 2% vs 10%, but 500 < the 1987 needed at ratio 8
    assert verdict.action == "hold"
    assert verdict.evidence["n_required"] == math.ceil((Z_975 + Z_80) ** 2 * 0.09 * (1 + 1 / 8) / 0.0004)
    assert f"500 of the {verdict.evidence['n_required']} canary answers needed" in verdict.reason


def test_inside_the_noise_holds_and_a_bounded_loss_advances() -> None:
    noisy = judge("ctr", (4000, 400), (4000, 352), **KNOWN)  # -1.2 points: interval [-0.0248, +0.0008]
    assert noisy.action == "hold" and "inside the noise" in noisy.reason
    lo, hi = noisy.evidence["interval"]
    assert lo < -0.02 < hi and hi > 0
    same = judge("ctr", (20000, 2000), (4000, 400), **KNOWN)  # equal rates, half-width 0.0102 < 0.02
    assert same.action == "advance" and same.evidence["interval"][0] == pytest.approx(-Z_975 * math.sqrt(2.7e-5))
    better = judge("ctr", (4000, 400), (4000, 480), **KNOWN)
    assert better.action == "advance" and better.evidence["difference"] == pytest.approx(0.02)


def test_no_answers_or_no_successes_hold_and_bad_counts_are_refused() -> None:
    assert judge("ctr", (0, 0), (10, 1), **KNOWN).action == "hold"
    nothing = judge("ctr", (5000, 0), (5000, 0), **KNOWN)
    assert nothing.action == "hold" and "no successes" in nothing.reason
    with pytest.raises(ValueError, match="successes must lie between 0 and the answers"):
        judge("ctr", (10, 11), (10, 1), **KNOWN)


def test_any_rollback_wins_and_all_must_advance() -> None:
    good = judge("ctr", (20000, 2000), (4000, 400), **KNOWN)
    bad = judge("contact_rate", (4000, 400), (4000, 300), **KNOWN)
    noisy = judge("contact_rate", (4000, 400), (4000, 352), **KNOWN)
    assert combine([good, bad]).action == "rollback"
    assert combine([good, noisy]).action == "hold"
    both = combine([good, good])
    assert both.action == "advance" and set(both.evidence) == {"ctr"}
    serving_ok = Decision("advance", ["fast"])
    assert with_outcomes(serving_ok, combine([good, bad])).action == "rollback"
    assert with_outcomes(Decision("rollback", ["slow"]), combine([good])).action == "rollback"
    assert with_outcomes(serving_ok, None) is serving_ok
    merged = with_outcomes(serving_ok, combine([good, noisy]))
    assert merged.action == "hold" and merged.reasons[0] == "fast" and "ctr" in merged.evidence["outcomes"]


def feedback_row(rid: str, variant: str, items: int = 12) -> dict:  # type: ignore[type-arg]
    return {"request_id": rid, "ts": datetime(2026, 12, 1, tzinfo=UTC), "user_id": "u", "context": "{}",
            "items": [f"i{k}" for k in range(items)], "scores": [0.0] * items, "propensities": [1.0] * items,
            "variant": variant, "model_version": "1", "fallback_level": variant}  # fmt: skip


def test_cohort_counts_count_answers_not_clicks() -> None:
    table = to_table([feedback_row("a", "champion"), feedback_row("b", "champion"), feedback_row("c", "challenger"),
                      feedback_row("d", "challenger")])  # fmt: skip
    outcomes = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "c", "c"],
            "position": [1, 2, 11, 3, 3],  # a: two clicks, one answer; b: a click beyond k=10 does not count
            "outcome": ["click", "click", "click", "click", "contact"],
        }
    )
    counts = cohort_counts(table, outcomes, k=10)
    assert counts == {
        "champion": {"answers": 2, "clicked": 1, "contacted": 0},
        "challenger": {"answers": 2, "clicked": 1, "contacted": 1},
    }
    decision = judge_cohorts(counts, ctr_mde=0.02, contact_mde=None, alpha=0.05, power=0.8)
    assert set(decision.evidence) == {"ctr"} and decision.action == "hold"
    assert set(judge_cohorts(counts, ctr_mde=0.02, contact_mde=0.02, alpha=0.05, power=0.8).evidence) == {
        "ctr",
        "contact_rate",
    }
