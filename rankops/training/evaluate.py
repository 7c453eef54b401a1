"""Offline evaluation on a holdout: a model, the baselines it must beat, and segments.

All numbers come from :mod:`rankops.training.metrics` (checked against LightGBM's own
evaluation), the same code for the challenger, the champion and every baseline.

Segments:
- ``category/<name>``: the requests whose query category is ``<name>`` (whole lists);
- ``item_age/new`` and ``item_age/old``: within each request, the sub-list of items younger
  (older) than ``evaluation.new_item_days`` at request time, ranked among themselves: how
  well cold-start items are ordered. ``new_item_share@k`` (overall) is the share of top-k
  slots the model gives to new items.
Segments with fewer than ``evaluation.min_segment_requests`` requests are reported with
their size only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rankops.errors import DataError
from rankops.features import registry
from rankops.scoring.scorer import Scorer
from rankops.training import metrics
from rankops.training.baseline import RULE_INPUTS, rule_scores

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config_sections import EvaluationConfig


@dataclass(frozen=True)
class Holdout:
    """The holdout rows and what evaluating on them needs besides scores."""

    frame: pd.DataFrame
    item_clicks: pd.DataFrame  # item_id, clicks before the holdout (popularity, long-tail head)
    catalog_size: int

    def head(self, share: float) -> set[str]:
        return metrics.popularity_head(
            self.item_clicks["item_id"].to_numpy(), self.item_clicks["clicks"].to_numpy(), share
        )


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


def new_item_mask(frame: pd.DataFrame, cfg: EvaluationConfig) -> np.ndarray:
    """Rows whose item was younger than ``new_item_days`` at request time (unknown age: old)."""
    age = frame[registry.measuring("item_age_days")].to_numpy(np.float64)
    return np.nan_to_num(age, nan=np.inf) < cfg.new_item_days


def segment_metrics(
    holdout: pd.DataFrame, scores: np.ndarray, cfg: EvaluationConfig, head_items: set[str]
) -> dict[str, dict[str, float]]:
    """Metrics per query category and per item age (see the module docstring).
    Coverage in a segment is relative to the items that appear in that segment."""
    scores = np.asarray(scores, dtype=np.float64)
    masks: dict[str, np.ndarray] = {
        f"category/{c}": (holdout["query_category"] == c).to_numpy() for c in sorted(holdout["query_category"].unique())
    }
    is_new = new_item_mask(holdout, cfg)
    masks["item_age/new"], masks["item_age/old"] = is_new, ~is_new
    out: dict[str, dict[str, float]] = {}
    for name, mask in masks.items():
        rows = holdout[mask]
        requests = int(rows["request_id"].nunique())
        if requests < cfg.min_segment_requests:
            out[name] = {"requests": float(requests), "rows": float(len(rows))}
            continue
        scored = evaluate_scores(rows, scores[mask], cfg, int(rows["item_id"].nunique()), head_items)
        out[name] = {**scored, "requests": float(requests), "rows": float(len(rows))}
    return out


def evaluate_model(
    holdout: Holdout, scores: np.ndarray, cfg: EvaluationConfig, with_segments: bool = True
) -> dict[str, Any]:
    """Overall metrics (plus the new-item share of top-k slots) and, optionally, segments."""
    head = holdout.head(cfg.long_tail_share)
    frame = holdout.frame
    overall = evaluate_scores(frame, scores, cfg, holdout.catalog_size, head)
    sizes = metrics.group_sizes(frame["request_id"].to_numpy())
    top = metrics.top_k_items(np.arange(len(frame)), scores, sizes, cfg.ndcg_k)
    overall[f"new_item_share@{cfg.ndcg_k}"] = float(new_item_mask(frame, cfg)[top].mean()) if len(top) else 0.0
    result: dict[str, Any] = {"overall": overall}
    if with_segments:
        result["segments"] = segment_metrics(frame, scores, cfg, head)
    return result


def score_booster(model: lgb.Booster | Scorer, frame: pd.DataFrame) -> np.ndarray:
    """Scores of a model on rows, using the columns *it* was trained on (an older champion
    may expect a different feature list than the current registry). A :class:`Scorer` scores
    as the server does (compiled trees when verified); a bare booster through LightGBM."""
    scorer = model if isinstance(model, Scorer) else Scorer(model, threads=2)
    names = list(scorer.booster.feature_name())
    missing = [n for n in names if n not in frame]
    if missing:
        raise DataError(f"the model expects feature columns {missing} that the holdout does not have")
    return scorer.predict(frame[names].to_numpy(np.float64))


def random_scores(holdout: pd.DataFrame, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(holdout))


def popularity_scores(train: pd.DataFrame, holdout: pd.DataFrame) -> np.ndarray:
    """Rank by clicks received during training: what a ranker without features would do."""
    clicks = train.groupby("item_id")["clicked"].sum()
    return holdout["item_id"].map(clicks).fillna(0.0).to_numpy(np.float64)


def popularity_from_clicks(item_clicks: pd.DataFrame, holdout: pd.DataFrame) -> np.ndarray:
    """The popularity ranking from the processing job's per-item click counts."""
    clicks = item_clicks.set_index("item_id")["clicks"]
    return holdout["item_id"].map(clicks).fillna(0.0).to_numpy(np.float64)


def rule_baseline_scores(holdout: pd.DataFrame) -> np.ndarray:
    return rule_scores({c: holdout[c].to_numpy() for c in RULE_INPUTS})


def baseline_scores(holdout: Holdout, seed: int) -> dict[str, np.ndarray]:
    """Every baseline, scored on the holdout: random, the rule, popularity."""
    frame = holdout.frame
    return {
        "random": random_scores(frame, seed),
        "rule": rule_baseline_scores(frame),
        "popularity": popularity_from_clicks(holdout.item_clicks, frame),
    }
