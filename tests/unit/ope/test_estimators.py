"""IPS, SNIPS and DR equal hand-computed values on a hand-made log; intervals, ESS, support."""

from __future__ import annotations

import numpy as np
import pytest

from rankops.errors import DataError
from rankops.ope import estimators as est

# two requests, two positions each:
#   request 0: pos 1 clicked, p=0.5, target 1.0 (w=2); pos 2 not clicked, p=0.5, target 0 (w=0)
#   request 1: pos 1 not clicked, p=0.25, target 0.5 (w=2); pos 2 clicked, p=1.0, target 0.5 (w=0.5)
LOG = est.RankingLog(
    request=np.array([0, 0, 1, 1]),
    position=np.array([1, 2, 1, 2]),
    click=np.array([1.0, 0.0, 0.0, 1.0]),
    propensity=np.array([0.5, 0.5, 0.25, 1.0]),
)
TARGET = np.array([1.0, 0.0, 0.5, 0.5])


def test_ips_equals_hand_computed_value() -> None:
    e = est.ips(LOG, TARGET, n_boot=50)
    # (2*1 + 0*0 + 2*0 + 0.5*1) / 2 requests
    assert e.value == pytest.approx(1.25)
    assert e.per_position == pytest.approx({1: 1.0, 2: 0.25})


def test_snips_equals_hand_computed_value() -> None:
    e = est.snips(LOG, TARGET, n_boot=50)
    # position 1: (2*1 + 2*0) / (2 + 2) = 0.5; position 2: (0*0 + 0.5*1) / (0 + 0.5) = 1.0
    assert e.value == pytest.approx(1.5)
    assert e.per_position == pytest.approx({1: 0.5, 2: 1.0})


def test_doubly_robust_equals_hand_computed_value() -> None:
    q_shown = np.array([0.5, 0.2, 0.3, 0.4])
    q_target = np.array([0.6, 0.1, 0.2, 0.3])
    e = est.doubly_robust(LOG, TARGET, q_shown, q_target, n_boot=50)
    # [(0.6 + 2*0.5) + (0.1 + 0) + (0.2 + 2*(0-0.3)) + (0.3 + 0.5*(1-0.4))] / 2
    assert e.value == pytest.approx(0.95)


def test_effective_sample_size_is_kish() -> None:
    w = TARGET / LOG.propensity  # 2, 0, 2, 0.5
    assert est.effective_sample_size(w) == pytest.approx(4.5**2 / 8.25)
    assert est.ips(LOG, TARGET, n_boot=20).ess == pytest.approx(4.5**2 / 8.25)


def _on_policy_log(n: int, seed: int) -> tuple[est.RankingLog, np.ndarray]:
    rng = np.random.default_rng(seed)
    ctr = np.array([0.3, 0.2, 0.1])
    click = (rng.random((n, 3)) < ctr).astype(float).ravel()
    prop = np.full(3 * n, 0.25)
    log = est.RankingLog(np.repeat(np.arange(n), 3), np.tile([1, 2, 3], n), click, prop)
    return log, prop.copy()


def test_on_policy_estimates_are_the_mean_clicks_with_an_interval_around_them() -> None:
    log, target = _on_policy_log(2_000, seed=1)
    mean_clicks = log.click.sum() / 2_000
    for e in (est.ips(log, target), est.snips(log, target)):
        assert e.value == pytest.approx(mean_clicks)
        assert e.low < e.value < e.high
        assert e.high - e.low < 0.1  # 3 positions of Bernoulli clicks, 2,000 requests
        assert e.ess == pytest.approx(6_000)
        assert e.warnings == []


def test_interval_narrows_with_more_requests() -> None:
    small = est.snips(*_on_policy_log(200, seed=2))
    large = est.snips(*_on_policy_log(5_000, seed=2))
    assert (large.high - large.low) < (small.high - small.low) / 3


def test_too_little_support_is_warned() -> None:
    log, _ = _on_policy_log(2_000, seed=3)
    # the target puts half its mass where the logging policy (p=0.25 for what it showed)
    # never goes: weights are 2 on a quarter of the rows, 0 elsewhere -> mean 0.5
    rng = np.random.default_rng(4)
    target = np.where(rng.random(len(log.click)) < 0.25, 0.5, 0.0)
    warnings = est.ips(log, target).warnings
    assert any("position 1: mean importance weight" in w for w in warnings)
    few = np.zeros(len(log.click))
    few[:30] = 0.25
    assert any("effective sample size" in w for w in est.snips(log, few).warnings)


@pytest.mark.parametrize("bad", [0.0, 1.5, np.nan])
def test_propensity_outside_unit_interval_names_the_row(bad: float) -> None:
    with pytest.raises(DataError, match=r"logged row 2: propensity .* outside \(0, 1\]"):
        est.RankingLog(np.zeros(3, int), np.ones(3, int), np.zeros(3), np.array([0.5, 0.5, bad]))
