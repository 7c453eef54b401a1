"""How good the serving benchmark's answers are: its training set and holdout relevance, the
fallback model as the product trains it, and NDCG@10 of served answers.

The fault phases (:mod:`benchmarks.serving_fault`) use it to judge degradation by quality, not
only by status codes: NDCG@10 of the answers given during a Redis outage over the champion's
in the normal phase, on a holdout (the served items' graded relevance, drawn with fresh noise
from the same utility the models were trained on).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from benchmarks.serving_setup import item_features, model_matrix

NDCG_K = 10


def graded(stored: np.ndarray, category: str, seed: int) -> np.ndarray:
    """0..4 relevance: 8 x the rule baseline's score (its declared inputs), plus noise (the
    benchmark's world; labels follow the registry's declarations, no feature named here)."""
    from rankops.features.registry import model_features
    from rankops.training.baseline import rule_scores

    x = model_matrix(stored, category)
    noise = np.random.default_rng(seed).normal(0, 0.3, len(stored))
    utility = 8 * rule_scores(dict(zip(model_features(), x.T, strict=True))) + noise
    return np.clip(np.round(utility), 0, 4).astype(int)


def training_set(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The models' training rows (model features, requests of 50 rows for "toys") and labels."""
    stored = item_features(rows, 2)
    return model_matrix(stored, "toys"), graded(stored, "toys", 1)


def holdout_relevance(items: list[str], values: np.ndarray, seed: int = 5) -> dict[str, int]:
    """Each served item's relevance for the benchmark's requests (all for "toys"), fresh noise."""
    return dict(zip(items, graded(values, "toys", seed).tolist(), strict=True))


def register_fallback(settings: Any, rows: int) -> dict[str, Any]:
    """Train the fallback model as every training run does (``train_fallback``, the configured
    ``training.fallback``) on the champion's training rows and make it the fallback's champion."""
    import pandas as pd

    from rankops import registry
    from rankops.features.registry import model_features
    from rankops.training.train import train_fallback

    x, label = training_set(rows)
    frame = pd.DataFrame(x, columns=model_features())
    frame["label"] = label
    frame["request_id"] = np.arange(rows) // 50
    cut = (rows * 4 // 5) // 50 * 50
    result = train_fallback(frame.iloc[:cut], frame.iloc[cut:], settings.training)
    name = registry.fallback_model_name(settings)
    registered = registry.log_ranker(
        settings,
        result.booster,
        params={"trees": result.booster.num_trees()},
        metrics={},
        history={},
        input_example=frame[result.feature_names].head(3),
        tags={"benchmark": "serving"},
        registered_name=name,
    )
    registry.set_alias(settings, registry.CHAMPION, registered.version, name)
    return {"features": result.feature_names, "trees": result.booster.num_trees()}


def ndcg_of(rankings: Iterable[list[str]], relevance: dict[str, int], k: int = NDCG_K) -> float | None:
    """Mean NDCG@k of rankings (item ids, best first) against the graded relevance."""
    from rankops.training.metrics import ndcg_at_k

    lists = [r for r in rankings if r]
    if not lists:
        return None
    labels = np.concatenate([[relevance[i] for i in r] for r in lists])
    scores = np.concatenate([-np.arange(len(r), dtype=float) for r in lists])  # the served order
    sizes = np.array([len(r) for r in lists])
    return round(float(ndcg_at_k(labels, scores, sizes, k)), 4)
