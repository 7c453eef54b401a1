"""Evaluation: one metric code for overall and segment numbers, baselines, scoring by a model's own columns."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from rankops.config_sections import EvaluationConfig
from rankops.errors import DataError
from rankops.training import evaluate, metrics
from rankops.training.evaluate import Holdout

CFG = EvaluationConfig(min_segment_requests=5)


@pytest.fixture
def holdout(rows: pd.DataFrame) -> Holdout:
    clicks = rows.groupby("item_id")["clicked"].sum().astype(float)
    return Holdout(rows, pd.DataFrame({"item_id": clicks.index, "clicks": clicks.to_numpy()}), 500)


def test_category_segments_are_the_metrics_of_their_requests(holdout: Holdout) -> None:
    frame = holdout.frame
    scores = np.random.default_rng(1).random(len(frame))
    result = evaluate.evaluate_model(holdout, scores, CFG)
    toys = (frame["query_category"] == "toys").to_numpy()
    sub = frame[toys]
    expected = metrics.ndcg_at_k(
        sub["label"].to_numpy(), scores[toys], metrics.group_sizes(sub["request_id"].to_numpy()), 10
    )
    segment = result["segments"]["category/toys"]
    assert segment["ndcg@10"] == pytest.approx(expected)
    assert segment["requests"] == sub["request_id"].nunique() and segment["rows"] == len(sub)
    assert {"category/home", "category/sports", "item_age/new", "item_age/old"} <= set(result["segments"])


def test_item_age_segments_rank_new_items_among_themselves(holdout: Holdout) -> None:
    frame = holdout.frame
    new = (frame["days_since_creation"] < CFG.new_item_days).to_numpy()
    perfect_for_new = np.where(new, frame["label"].to_numpy(), 0.0)  # orders only the new items well
    segments = evaluate.evaluate_model(holdout, perfect_for_new, CFG)["segments"]
    assert segments["item_age/new"]["ndcg@10"] == pytest.approx(1.0)
    assert segments["item_age/old"]["ndcg@10"] < 0.9
    assert segments["item_age/new"]["rows"] + segments["item_age/old"]["rows"] == len(frame)


def test_small_segments_report_their_size_only(holdout: Holdout) -> None:
    strict = EvaluationConfig(min_segment_requests=10_000)
    segments = evaluate.evaluate_model(holdout, np.zeros(len(holdout.frame)), strict)["segments"]
    assert all(set(values) == {"requests", "rows"} for values in segments.values())


def test_new_item_share_counts_top_slots(holdout: Holdout) -> None:
    frame = holdout.frame
    new = (frame["days_since_creation"] < CFG.new_item_days).to_numpy()
    overall = evaluate.evaluate_model(holdout, new.astype(float), CFG, with_segments=False)["overall"]
    against = evaluate.evaluate_model(holdout, (~new).astype(float), CFG, with_segments=False)["overall"]
    assert overall["new_item_share@10"] > against["new_item_share@10"]
    assert set(overall) == {"ndcg@10", "map@20", "coverage@10", "long_tail_share@10", "new_item_share@10"}


def test_baselines_and_the_learned_signal(holdout: Holdout) -> None:
    frame = holdout.frame
    baselines = {n: evaluate.evaluate_model(holdout, s, CFG, False)["overall"]["ndcg@10"]
                 for n, s in evaluate.baseline_scores(holdout, seed=3).items()}  # fmt: skip
    assert set(baselines) == {"random", "rule", "popularity"}
    assert baselines["rule"] > baselines["random"]  # the hidden utility grows with the rule's inputs
    pop = evaluate.popularity_from_clicks(holdout.item_clicks, frame)
    assert np.array_equal(pop, evaluate.popularity_scores(frame, frame))


def test_a_model_is_scored_with_its_own_columns(holdout: Holdout) -> None:
    frame = holdout.frame
    data = lgb.Dataset(frame[["price", "ctr_7d"]].to_numpy(), label=frame["label"], feature_name=["price", "ctr_7d"])
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1}, data, num_boost_round=3)
    expected = booster.predict(frame[["price", "ctr_7d"]].to_numpy())
    assert np.array_equal(evaluate.score_booster(booster, frame), expected)
    with pytest.raises(DataError, match=r"expects feature columns \['ctr_7d'\]"):
        evaluate.score_booster(booster, frame.drop(columns=["ctr_7d"]))
