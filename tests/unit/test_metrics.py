"""Ranking metrics against an independent reference: LightGBM's own evaluation."""

import lightgbm as lgb
import numpy as np
import pytest

from rankops.training import metrics


def lightgbm_metric(labels: np.ndarray, scores: np.ndarray, sizes: np.ndarray, metric: str, k: int) -> float:
    """LightGBM evaluating fixed predictions: a 0-iteration booster with ``init_score``."""
    data = lgb.Dataset(np.zeros((len(labels), 1)), label=labels, group=sizes, init_score=scores)
    params = {"objective": "lambdarank", "metric": metric, "eval_at": [k], "verbosity": -1}
    booster = lgb.Booster(params, data)
    result = booster.eval_train()
    return float(result[0][2])


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, rng.integers(1, 60))
    labels = rng.choice(5, sizes.sum(), p=[0.6, 0.2, 0.1, 0.07, 0.03]).astype(float)
    scores = np.round(rng.normal(size=sizes.sum()), 1)  # rounded: ties happen
    return labels, scores, sizes


@pytest.mark.parametrize("seed", range(25))
def test_ndcg_matches_lightgbm(seed: int) -> None:
    labels, scores, sizes = random_case(seed)
    for k in (1, 5, 10):
        ours = metrics.ndcg_at_k(labels, scores, sizes, k)
        assert ours == pytest.approx(lightgbm_metric(labels, scores, sizes, "ndcg", k), abs=1e-6)


@pytest.mark.parametrize("seed", range(25))
def test_map_matches_lightgbm(seed: int) -> None:
    labels, scores, sizes = random_case(seed)
    for k in (5, 20):
        ours = metrics.map_at_k(labels, scores, sizes, k)
        assert ours == pytest.approx(lightgbm_metric(labels, scores, sizes, "map", k), abs=1e-6)


def test_ndcg_edge_cases() -> None:
    assert metrics.ndcg_at_k(np.array([0, 0.0]), np.array([1, 2.0]), np.array([2]), 10) == 1.0
    assert metrics.ndcg_at_k(np.array([0, 3.0]), np.array([2, 1.0]), np.array([2]), 1) == 0.0
    assert metrics.ndcg_at_k(np.array([3, 0.0]), np.array([2, 1.0]), np.array([2]), 1) == 1.0


def test_group_sizes_of_contiguous_queries() -> None:
    assert metrics.group_sizes(np.array(["a", "a", "b", "c", "c", "c"])).tolist() == [2, 1, 3]
    assert metrics.group_sizes(np.array([])).tolist() == []


def test_coverage_long_tail_and_head() -> None:
    items = np.array(["a", "b", "c", "a", "d", "e"])
    scores = np.array([3, 2, 1, 3, 2, 1.0])
    sizes = np.array([3, 3])
    assert metrics.top_k_items(items, scores, sizes, 1).tolist() == ["a", "a"]
    assert metrics.catalog_coverage(items, scores, sizes, catalog_size=10, k=2) == pytest.approx(0.3)
    head = metrics.popularity_head(np.array(["a", "a", "a", "b", "c"]), np.array([1, 1, 1, 1, 0]), share=0.7)
    assert head == {"a"}
    assert metrics.long_tail_share(items, scores, sizes, head, k=2) == pytest.approx(0.5)
