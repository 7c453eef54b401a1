"""The graded label: weighted engagements, rounded half up, never erasing an engagement, capped."""

import numpy as np
import pytest

from rankops.config_sections import LabelConfig
from rankops.training.labels import objective_label


def label(cfg: LabelConfig, clicked: list[int], contacted: list[int], revenue: list[float]) -> list[int]:
    out = objective_label(np.array(clicked), np.array(contacted), np.array(revenue), cfg)
    assert out.dtype == np.int32
    return out.tolist()


def test_default_weights_count_each_engagement_once_and_cap_at_max_label() -> None:
    cfg = LabelConfig()
    #                      none  click  click+contact  all three   revenue only  refund (negative revenue)
    assert label(cfg, [0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 9.5, 3.0, -2.0]) == [0, 1, 2, 3, 1, 0]
    assert label(LabelConfig(max_label=2), [1], [1], [1.0]) == [2]


@pytest.mark.parametrize("click_weight", [0.5, 0.3, 0.01])
def test_a_small_weight_never_erases_an_engagement(click_weight: float) -> None:
    """np.rint rounded 0.5 to 0 (half to even): a click-only row became "not relevant"."""
    cfg = LabelConfig(click_weight=click_weight)
    assert label(cfg, [1, 0], [0, 0], [0, 0]) == [1, 0]


def test_halves_round_up_not_to_even() -> None:
    cfg = LabelConfig(click_weight=0.5, contact_weight=2.0, revenue_weight=2.0)
    # 2.5 -> 3 (rint: 2), 4.5 -> 5 capped to 4 (rint: 4), 2.0 stays 2
    assert label(cfg, [1, 1, 0], [1, 1, 1], [0, 1.0, 0]) == [3, 4, 2]
    assert label(LabelConfig(click_weight=0.4, contact_weight=1.0), [1], [1], [0]) == [1], "1.4 rounds down"


def test_an_engagement_weighted_zero_does_not_count() -> None:
    cfg = LabelConfig(click_weight=0.0)
    assert label(cfg, [1, 1], [0, 1], [0, 0]) == [0, 1]
