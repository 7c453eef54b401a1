"""Position-debiased lambdarank (training.position_debias) against a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rankops.config import Settings
from rankops.training import debias
from rankops.training.dataset import split_by_time
from tests.conftest import ranking_frame


def biased_clicks(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The logging policy orders each request by ``ctr_7d`` (irrelevant here); users examine
    position p with 1/p and click by ``image_quality_score`` (the true relevance)."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    frame["position"] = (
        frame.groupby("request_id", sort=False)["ctr_7d"].rank(ascending=False, method="first").astype(np.int16)
    )
    relevant = 1.0 / (1.0 + np.exp(-6.0 * (frame["image_quality_score"] - 0.5)))
    frame["label"] = (rng.random(len(frame)) < relevant / frame["position"]).astype(np.int32)
    return frame, "image_quality_score"


def test_debiased_ranker_beats_the_biased_one_on_true_relevance(settings: Settings) -> None:
    frame, truth_column = biased_clicks(ranking_frame(requests=400, seed=3))
    split = split_by_time(frame, 0.2, 0.2)
    cfg = settings.training.model_copy(update={"num_boost_round": 30, "early_stopping_rounds": 0})
    result = debias.compare(split.train, split.valid, split.holdout, split.holdout[truth_column].to_numpy(), cfg)
    assert result.truth["debiased"] > result.truth["biased"] + 0.01, result.as_dict()
    assert result.debiased_wins_on_truth and result.truth_lift_ci95[0] > 0  # more than noise
    assert set(result.as_dict()) == {
        "ndcg@10_clicks",
        "ndcg@10_truth",
        "ndcg@10_truth_lift_ci95",
        "debiased_wins_on_truth",
    }


def test_no_ground_truth_outside_a_synthetic_lake(settings: Settings) -> None:
    from rankops.lake import Lake

    assert debias.true_relevance(Lake.from_settings(settings)) is None
