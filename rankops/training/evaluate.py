"""Offline evaluation on a holdout: the model, and the baselines it must beat."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rankops.training import metrics

if TYPE_CHECKING:
    from rankops.config_sections import EvaluationConfig


def evaluate_scores(
    holdout: pd.DataFrame, scores: np.ndarray, cfg: EvaluationConfig, catalog_size: int, head_items: set[str]
) -> dict[str, float]:
    """NDCG@k, MAP@k, catalog coverage and long-tail share of one scoring of the holdout."""
    sizes = metrics.group_sizes(holdout["request_id"].to_numpy())
    labels = holdout["label"].to_numpy()
    items = holdout["item_id"].to_numpy()
    k = cfg.ndcg_k
    return {
        f"ndcg@{k}": metrics.ndcg_at_k(labels, scores, sizes, k),
        f"map@{cfg.map_k}": metrics.map_at_k(labels, scores, sizes, cfg.map_k),
        f"coverage@{k}": metrics.catalog_coverage(items, scores, sizes, catalog_size, k),
        f"long_tail_share@{k}": metrics.long_tail_share(items, scores, sizes, head_items, k),
    }


def random_scores(holdout: pd.DataFrame, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(holdout))


def popularity_scores(train: pd.DataFrame, holdout: pd.DataFrame) -> np.ndarray:
    """Rank by clicks received during training: what a ranker without features would do."""
    clicks = train.groupby("item_id")["clicked"].sum()
    return holdout["item_id"].map(clicks).fillna(0.0).to_numpy(np.float64)
