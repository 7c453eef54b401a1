"""The promotion gate: floor, relative NDCG and coverage tolerances, every reason recorded.
(The feedback-loop guard's checks: tests/unit/test_loop_guard.py.)"""

import pytest

from rankops.config_sections import GateConfig
from rankops.training.gate import decide

CFG = GateConfig(max_ndcg_drop_relative=0.005, max_coverage_drop_relative=0.02, ndcg_floor=0.30)


def metrics(ndcg: float, coverage: float) -> dict[str, float]:
    return {
        "ndcg@10": ndcg,
        "coverage@10": coverage,
        "map@20": 0.4,
        "long_tail_share@10": 0.3,
        "new_item_share@10": 0.1,
    }


def failing(decision) -> list[str]:  # type: ignore[no-untyped-def]
    """The checks that said no, the loop guard's (which compound coverage too) left out."""
    return [c.name for c in decision.checks if not c.passed and not c.name.startswith("loop_guard_")]


def test_without_a_champion_only_the_floor_applies() -> None:
    passed = decide(metrics(0.31, 0.01), None, CFG)
    assert passed.promote and passed.decision == "promote"
    assert [c.name for c in passed.checks] == ["ndcg_floor", "champion"]
    assert "no champion yet" in passed.reasons[1]
    failed = decide(metrics(0.29, 0.9), None, CFG)
    assert not failed.promote and failed.decision == "reject"
    assert failed.reasons[0] == "ndcg@10 0.2900 is below the floor 0.3000"


@pytest.mark.parametrize(
    ("challenger", "promote", "failing_checks"),
    [
        (metrics(0.600, 0.50), True, []),
        (metrics(0.5971, 0.50), True, []),  # -0.48%: inside the 0.5% tolerance
        (metrics(0.5969, 0.50), False, ["ndcg_vs_champion"]),  # -0.52%
        (metrics(0.62, 0.489), False, ["coverage_vs_champion"]),  # -2.2% coverage
        (metrics(0.62, 0.491), True, []),  # -1.8% coverage
        (metrics(0.25, 0.40), False, ["ndcg_floor", "ndcg_vs_champion", "coverage_vs_champion"]),
    ],
)
def test_relative_tolerances_against_the_champion(challenger: dict, promote: bool, failing_checks: list[str]) -> None:
    decision = decide(challenger, metrics(0.600, 0.50), CFG, champion_version="4")
    assert decision.promote is promote
    assert failing(decision) == failing_checks
    assert len(decision.reasons) == 6  # floor, ndcg, coverage, and the loop guard's three figures


def test_the_champion_passes_against_itself_and_reasons_say_why() -> None:
    decision = decide(metrics(0.6, 0.5), metrics(0.6, 0.5), CFG, champion_version="7")
    assert decision.promote
    assert decision.reasons[1] == "ndcg@10 0.6000 vs champion v7 0.6000: +0.00% (allowed down to -0.50% relative): ok"


def test_the_record_holds_decision_reasons_metrics_and_thresholds() -> None:
    record = decide(metrics(0.5, 0.3), metrics(0.6, 0.5), CFG, champion_version="2").to_dict()
    assert record["decision"] == "reject" and record["promote"] is False
    assert record["challenger"]["ndcg@10"] == 0.5 and record["champion"]["ndcg@10"] == 0.6
    assert record["champion_version"] == "2"
    assert record["thresholds"] == {
        "ndcg_floor": 0.30,
        "max_ndcg_drop_relative": 0.005,
        "max_coverage_drop_relative": 0.02,
        "loop_guard_releases": 3.0,
        "loop_guard_max_coverage_drop": 0.05,
        "loop_guard_max_long_tail_share_drop": 0.10,
        "loop_guard_max_new_item_share_drop": 0.20,
        "k": 10.0,
    }
    assert len(record["reasons"]) == len(record["checks"]) == 6
    assert "worse than allowed" in record["reasons"][1]


def test_thresholds_come_from_configuration() -> None:
    strict = GateConfig(max_ndcg_drop_relative=0.0, max_coverage_drop_relative=0.0, ndcg_floor=0.7)
    assert not decide(metrics(0.65, 0.5), None, strict).promote
    lenient = GateConfig(
        max_ndcg_drop_relative=0.2, max_coverage_drop_relative=0.5, ndcg_floor=0.1, loop_guard_max_coverage_drop=0.5
    )
    assert decide(metrics(0.5, 0.3), metrics(0.6, 0.5), lenient).promote
