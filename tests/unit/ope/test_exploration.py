"""Plackett-Luce exploration: exact marginals, propensities that match the draws, stickiness."""

from __future__ import annotations

import numpy as np
import pytest

from rankops.errors import ConfigError
from rankops.ope import exploration as ex


def test_marginals_are_doubly_stochastic_and_match_a_hand_computed_case() -> None:
    m = ex.marginals(np.array([[np.log(2.0), 0.0]]), temperature=1.0)[0]
    # two items with weights 2 and 1: the first leads with probability 2/3
    assert m == pytest.approx(np.array([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]))
    big = ex.marginals(np.random.default_rng(0).normal(size=(4, 5)), temperature=0.7)
    assert big.sum(axis=1) == pytest.approx(np.ones((4, 5)))
    assert big.sum(axis=2) == pytest.approx(np.ones((4, 5)))


def test_sampled_propensities_are_the_frequencies_of_the_draws() -> None:
    scores = np.array([1.5, 0.2, 1.0, -0.5, 0.8, -2.0])
    rng = np.random.default_rng(1)
    n, top_k = 6_000, 3
    seen = np.zeros((len(scores), top_k))
    claimed = np.zeros((len(scores), top_k))
    for _ in range(n):
        order, prop = ex.sample(scores, temperature=1.0, top_k=top_k, rng=rng)
        assert sorted(order) == list(range(len(scores)))
        assert (prop[top_k:] == 1.0).all() and list(order[top_k:]) == [1, 3, 5]  # below k: fixed
        seen[order[:top_k], np.arange(top_k)] += 1
        claimed[order[:top_k], np.arange(top_k)] = prop[:top_k]
    assert seen / n == pytest.approx(claimed, abs=0.02)


def test_deterministic_answers_log_propensity_one() -> None:
    order, prop = ex.deterministic(np.array([0.1, 0.9, 0.5]))
    assert list(order) == [1, 2, 0] and (prop == 1.0).all()


def test_exploration_bucket_is_sticky_per_user_and_near_its_share() -> None:
    users = [f"u-{n}" for n in range(20_000)]
    first = [ex.explores(u, 0.05) for u in users]
    assert first == [ex.explores(u, 0.05) for u in users]
    assert 0.04 < np.mean(first) < 0.06
    a = ex.user_rng("u-1", "electronics").random(3)
    assert a == pytest.approx(ex.user_rng("u-1", "electronics").random(3))
    assert a != pytest.approx(ex.user_rng("u-2", "electronics").random(3))


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"top_k must be 1\.\.6"):
        ex.sample(np.zeros(10), 1.0, 7, np.random.default_rng())
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        ex.sample(np.zeros(3), 0.0, 3, np.random.default_rng())
