"""The exact binomial test the release checks judge degraded-answer shares with."""

from __future__ import annotations

import math

import pytest

from rankops.release.rate_limit import binomial_tail, judge_rate

pytestmark = pytest.mark.unit


def test_the_tail_equals_the_hand_computed_sum_and_scipys() -> None:
    by_hand = 1 - sum(math.comb(18, i) * 0.01**i * 0.99 ** (18 - i) for i in range(2))
    assert binomial_tail(2, 18, 0.01) == pytest.approx(by_hand, rel=1e-12)
    assert binomial_tail(1, 18, 0.01) == pytest.approx(1 - 0.99**18, rel=1e-12)
    assert (binomial_tail(0, 5, 0.3), binomial_tail(6, 5, 0.3)) == (1.0, 0.0)
    stats = pytest.importorskip("scipy.stats")
    for k, n, p in ((3, 64, 0.01), (120, 10_000, 0.01), (900, 1000, 0.8), (50, 1000, 0.01)):
        assert binomial_tail(k, n, p) == pytest.approx(float(stats.binom.sf(k - 1, n, p)), rel=1e-9, abs=1e-300)


def test_one_degraded_answer_of_eighteen_is_noise_two_are_not() -> None:
    noise = judge_rate(1, 18, 0.01)
    assert not noise.exceeded and noise.share == pytest.approx(1 / 18)
    assert noise.p_value == pytest.approx(0.1655, abs=1e-4)
    assert judge_rate(2, 18, 0.01).exceeded
    assert not judge_rate(0, 18, 0.01).exceeded


def test_at_production_volume_the_test_is_the_raw_comparison_within_a_fraction_of_a_percent() -> None:
    assert not judge_rate(100, 10_000, 0.01).exceeded
    assert judge_rate(125, 10_000, 0.01).exceeded
    assert judge_rate(50, 1000, 0.01).exceeded


def test_no_answers_is_no_share_and_bad_counts_are_refused() -> None:
    empty = judge_rate(0, 0, 0.01)
    assert (empty.exceeded, empty.share) == (False, None)
    with pytest.raises(ValueError, match="count <= n"):
        judge_rate(5, 3, 0.01)
