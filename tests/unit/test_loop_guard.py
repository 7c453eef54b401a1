"""The feedback-loop guard: the top k may not narrow release after release beyond its limits."""

import json

import pytest

from rankops.config_sections import GateConfig
from rankops.training import loop_guard
from rankops.training.gate import decide

CFG = GateConfig()  # coverage 5 %, long tail 10 %, new items 20 % over 3 releases


def metrics(coverage: float, long_tail: float = 0.30, new_items: float = 0.10, ndcg: float = 0.6) -> dict[str, float]:
    return {
        "ndcg@10": ndcg,
        "coverage@10": coverage,
        "long_tail_share@10": long_tail,
        "new_item_share@10": new_items,
    }


def release(version: str, replaced: str | None, coverage: float = 1.0) -> loop_guard.Release:
    return loop_guard.Release(version, replaced, {"coverage": coverage, "long_tail_share": 1.0, "new_item_share": 1.0})


def test_a_slow_ratchet_each_step_inside_the_per_release_rule_is_stopped_when_it_compounds() -> None:
    """-1.9 % coverage per release passes the 2 % per-release rule every time; three in a row lose
    5.6 %, more than the guard's 5 %."""
    earlier = [release("3", "2", 0.981), release("2", "1", 0.981)]
    decision = decide(metrics(0.4905), metrics(0.5), CFG, champion_version="3", earlier=earlier)
    assert [c.name for c in decision.checks if not c.passed] == ["loop_guard_coverage"]
    assert not decision.promote
    reason = next(c.reason for c in decision.checks if c.name == "loop_guard_coverage")
    assert reason == (
        "coverage@10 compounded over the last 3 releases: -5.59% (allowed down to -5.00%): "
        "the top 10 narrowed more than allowed"
    )
    record = decision.to_dict()["loop_guard"]
    assert [r["version"] for r in record["releases"]] == ["3", "2"]
    assert record["compounded"]["coverage"] == pytest.approx(0.981**3, abs=1e-6)
    # the same release after a history that did not narrow passes
    assert decide(metrics(0.4905), metrics(0.5), CFG, champion_version="3", earlier=[release("3", "2")]).promote


def test_only_the_configured_number_of_releases_compound() -> None:
    earlier = [release("5", "4"), release("4", "3"), release("3", "2", 0.5)]  # the old halving is 3 releases back
    assert decide(metrics(0.5), metrics(0.5), CFG, champion_version="5", earlier=earlier).promote
    longer = CFG.model_copy(update={"loop_guard_releases": 4})
    decision = decide(metrics(0.5), metrics(0.5), longer, champion_version="5", earlier=earlier)
    assert [c.name for c in decision.checks if not c.passed] == ["loop_guard_coverage"]


@pytest.mark.parametrize(
    ("challenger", "failing"),
    [
        (metrics(0.5, long_tail=0.26), ["loop_guard_long_tail_share"]),  # -13 % > 10 %
        (metrics(0.5, long_tail=0.28), []),  # -6.7 %
        (metrics(0.5, new_items=0.07), ["loop_guard_new_item_share"]),  # -30 % > 20 %
        (metrics(0.5, new_items=0.0), ["loop_guard_new_item_share"]),
        (metrics(0.5, long_tail=0.6, new_items=0.3), []),  # growing is never a problem
    ],
)
def test_long_tail_and_new_item_share_have_their_own_limits(challenger: dict, failing: list[str]) -> None:
    decision = decide(challenger, metrics(0.5), CFG, champion_version="1")
    assert [c.name for c in decision.checks if not c.passed] == failing


def test_a_figure_the_champion_did_not_have_cannot_shrink() -> None:
    assert loop_guard.ratios(metrics(0.5, new_items=0.0), metrics(0.5, new_items=0.0), 10)["new_item_share"] == 1.0


def test_no_champion_no_guard() -> None:
    decision = decide(metrics(0.1), None, CFG)
    assert decision.to_dict()["loop_guard"] is None
    assert not any(c.name.startswith("loop_guard_") for c in decision.checks)


def test_the_chain_is_walked_back_through_the_version_tags() -> None:
    tags = {
        "7": {
            loop_guard.TAG: loop_guard.tag_value("5", {"coverage": 0.99, "long_tail_share": 1.0, "new_item_share": 1})
        },
        "5": {
            loop_guard.TAG: loop_guard.tag_value("2", {"coverage": 0.98, "long_tail_share": 0.9, "new_item_share": 1})
        },
        "2": {"gate_decision": "promote"},  # gated before the guard existed: the chain ends here
    }
    chain = loop_guard.chain("7", tags.__getitem__, 5)
    assert [(r.version, r.replaced, r.ratios["coverage"]) for r in chain] == [("7", "5", 0.99), ("5", "2", 0.98)]
    assert [r.version for r in loop_guard.chain("7", tags.__getitem__, 1)] == ["7"]
    assert loop_guard.chain(None, tags.__getitem__, 5) == []


def test_an_unreadable_or_circular_tag_ends_the_chain_instead_of_failing_the_gate() -> None:
    good = loop_guard.tag_value("1", {"coverage": 1.0, "long_tail_share": 1.0, "new_item_share": 1.0})
    assert loop_guard.chain("3", {"3": {loop_guard.TAG: "{not json"}}.__getitem__, 5) == []
    assert loop_guard.chain("3", {"3": {loop_guard.TAG: json.dumps({"champion": "1"})}}.__getitem__, 5) == []
    itself = {"1": {loop_guard.TAG: good}}  # a version evaluated against itself is no release
    assert loop_guard.chain("1", itself.__getitem__, 5) == []
    circular = {"1": {loop_guard.TAG: loop_guard.tag_value("2", dict.fromkeys(loop_guard.FIGURES, 1.0))},
                "2": {loop_guard.TAG: good}}  # fmt: skip
    assert [r.version for r in loop_guard.chain("1", circular.__getitem__, 5)] == ["1", "2"]


def test_a_version_the_registry_no_longer_holds_ends_the_chain() -> None:
    from rankops.errors import ModelError

    def tags_of(version: str) -> dict[str, str]:
        if version == "4":
            return {loop_guard.TAG: loop_guard.tag_value("2", dict.fromkeys(loop_guard.FIGURES, 0.99))}
        raise ModelError(f"model 'rankops-ranker' has no version {version!r}")

    assert [(r.version, r.replaced) for r in loop_guard.chain("4", tags_of, 5)] == [("4", "2")]
