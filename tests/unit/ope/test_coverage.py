"""On simulated traffic with a known truth, SNIPS and DR 95% intervals cover the true value."""

from __future__ import annotations

import numpy as np
import pytest

from rankops.ope import simulation as sim

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
