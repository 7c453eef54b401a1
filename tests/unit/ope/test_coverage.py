"""On simulated traffic with a known truth, SNIPS and DR 95% intervals cover the true value."""

from __future__ import annotations

import numpy as np
import pytest

from rankops.ope import gate
from rankops.ope import simulation as sim
from rankops.ope.estimators import MIN_ESS

SEEDS = range(20)


@pytest.fixture(scope="module")
def world() -> sim.World:
    return sim.world(events=30_000, k=5, seed=7)


def test_snips_and_dr_intervals_cover_the_true_value_in_90_percent_of_seeds(world: sim.World) -> None:
    policies = sim.policies(world)
    truth = sim.true_value(world, policies["better"])
    covered = {"snips": 0, "dr": 0}
    errors = []
    for seed in SEEDS:
        estimates = sim.evaluate(world, policies["logging"], policies["better"], seed, which=("snips", "dr"))
        for name in covered:
            covered[name] += estimates[name].low <= truth <= estimates[name].high
        errors.append(estimates["snips"].value - truth)
    assert covered["snips"] >= 18, covered
    assert covered["dr"] >= 18, covered
    assert abs(np.mean(errors)) < 0.05 * truth  # no visible bias across seeds


def test_the_better_policy_is_truly_better_and_estimated_so(world: sim.World) -> None:
    policies = sim.policies(world)
    assert sim.true_value(world, policies["better"]) > sim.true_value(world, policies["logging"])
    estimates = sim.evaluate(world, policies["logging"], policies["worse"], seed=0, which=("snips",))
    assert estimates["snips"].value < sim.true_value(world, policies["logging"])
    assert estimates["snips"].warnings  # far from the logging policy: flagged


def test_the_gates_lift_interval_covers_the_true_lift_on_a_thin_uniform_log() -> None:
    """The off-policy gate may stop a release from ``gate.MIN_ESS_CLEAR`` per position on (below
    ``MIN_ESS``), when the whole lift interval is below the allowed drop. At about that effective
    sample size -- a uniform log of 10-item slates, 400 requests -- the interval still covers the true
    lift of a ranker that shares nothing with the champion and of a comparable one in >= 18 of 20
    seeds, and the comparable one is never stopped."""
    w = sim.world(events=30_000, k=10, seed=7)
    rng = np.random.default_rng(123)
    rankers = {
        "bad": rng.normal(0.0, 1.0, w.utility.shape),
        "comparable": 0.5 * w.utility + rng.normal(0.0, 1.0, w.utility.shape),
    }
    for name, score in rankers.items():
        covered, stopped, ess = 0, 0, []
        for seed in SEEDS:
            true, estimate = sim.uniform_lift(w, score, w.logging_score, 400, seed)
            low, high = estimate["lift_ci95"]
            covered += low <= true <= high
            stopped += high < -0.05 * estimate["b"]["value"]
            ess.append(estimate["support"]["min_ess"])
        assert covered >= 18, (name, covered)
        assert gate.MIN_ESS_CLEAR * 0.7 < np.median(ess) < MIN_ESS, ess  # the thin regime the rule is about
        if name == "comparable":
            assert stopped == 0
        else:
            assert true < -0.1 * estimate["b"]["value"]  # truly worse by more than the allowed drop
