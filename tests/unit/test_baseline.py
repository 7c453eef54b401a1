import numpy as np

from rankops.features import registry
from rankops.training.baseline import RULE_INPUTS, rule_scores


def test_rule_baseline_prefers_clicked_good_looking_matching_items() -> None:
    columns = {
        "ctr_7d": np.array([0.1, 0.3, 0.3, 0.3]),
        "image_quality_score": np.array([0.5, 0.5, 0.9, 0.9]),
        "category_match": np.array([1.0, 0.0, 0.0, 1.0]),
    }
    scores = rule_scores(columns)
    assert np.argsort(-scores).tolist() == [3, 2, 1, 0]


def test_rule_inputs_are_declared_features() -> None:
    for name in RULE_INPUTS:
        assert registry.feature(name).name == name
