"""Position-debiased learning to rank, judged on the synthetic marketplace's hidden truth.

Clicks are position-biased: an item shown at 8 gets fewer clicks than at 1 whatever its
relevance, so a ranker fitted to clicks learns the logging policy's order as much as the
users' taste. LightGBM (>= 4.1) models this inside lambdarank when the training Dataset
carries the logged ``position`` (Unbiased LambdaMART-style position bias factors, damped by
``lambdarank_position_bias_regularization``); ``training.position_debias`` switches it on.

Whether it helps is only visible against true relevance, which clicks never show. The
synthetic generator's truth is a function of its spec and seed (``raw/_meta/synthetic.json``):
regenerating the marketplace gives every logged (request, item)'s true utility without the
lake ever storing it, so training cannot read it by accident. Both rankers -- with and
without positions -- are trained on the same rows and scored on the holdout against the
clicks-derived labels and against the true relevance ``sigmoid(utility - 3)`` (the chance
that a user who looks at the item clicks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rankops.errors import DataError
from rankops.training.metrics import group_sizes, ndcg_at_k, ndcg_per_query
from rankops.training.train import train_ranker

if TYPE_CHECKING:
    from rankops.config_sections import TrainingConfig
    from rankops.lake import Lake

META = ("_meta", "synthetic.json")  # in the raw zone, written by synthetic.write_marketplace


def true_relevance(lake: Lake) -> pd.DataFrame | None:
    """``request_id, item_id, true_relevance`` of every logged event, regenerated from the spec the
    lake's synthetic events were drawn with; ``None`` when the events are not synthetic."""
    from rankops.synthetic import MarketplaceSpec, _sigmoid, generate

    uri = lake.uri("raw", *META)
    if not lake.exists(uri):
        return None
    spec_doc = dict(lake.read_json(uri)["spec"])
    spec_doc["start"] = date.fromisoformat(str(spec_doc["start"]))
    market = generate(MarketplaceSpec(**spec_doc))
    return pd.DataFrame(
        {
            "request_id": market.events["request_id"].to_numpy(zero_copy_only=False),
            "item_id": market.events["item_id"].to_numpy(zero_copy_only=False),
            "true_relevance": _sigmoid(market.utility - 3.0),
        }
    )


def attach_truth(holdout: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """The true relevance of each holdout row, in the holdout's row order."""
    merged = holdout[["request_id", "item_id"]].merge(truth, on=["request_id", "item_id"], how="left")
    missing = int(merged["true_relevance"].isna().sum())
    if missing:
        raise DataError(
            f"{missing} holdout rows have no ground truth: the lake's events are not the synthetic "
            "marketplace raw/_meta/synthetic.json describes (regenerate with `rankops generate --replace`)"
        )
    return merged["true_relevance"].to_numpy(np.float64)


@dataclass(frozen=True)
class DebiasComparison:
    """NDCG@k of the biased and the position-debiased ranker on clicks and on the truth."""

    k: int
    clicks: dict[str, float]
    truth: dict[str, float]
    params: dict[str, Any]
    truth_lift_ci95: tuple[float, float]  # debiased - biased on the truth, paired over holdout requests

    @property
    def debiased_wins_on_truth(self) -> bool:
        return self.truth["debiased"] > self.truth["biased"]

    def as_dict(self) -> dict[str, Any]:
        return {
            f"ndcg@{self.k}_clicks": {k: round(v, 4) for k, v in self.clicks.items()},
            f"ndcg@{self.k}_truth": {k: round(v, 4) for k, v in self.truth.items()},
            f"ndcg@{self.k}_truth_lift_ci95": [round(v, 4) for v in self.truth_lift_ci95],
            "debiased_wins_on_truth": self.debiased_wins_on_truth,
        }


def compare(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    holdout: pd.DataFrame,
    relevance: np.ndarray,
    cfg: TrainingConfig,
    k: int = 10,
) -> DebiasComparison:
    """Train the ranker without and with logged positions on the same rows; score both on the
    holdout against click labels and against ``relevance`` (true, one per holdout row)."""
    sizes = group_sizes(holdout["request_id"].to_numpy())
    clicks: dict[str, float] = {}
    truth: dict[str, float] = {}
    params: dict[str, Any] = {}
    per_query: dict[str, np.ndarray] = {}
    for name, debias in (("biased", False), ("debiased", True)):
        result = train_ranker(train, valid, cfg.model_copy(update={"position_debias": debias}), eval_k=k)
        scores = np.asarray(
            result.booster.predict(
                holdout[result.feature_names].to_numpy(np.float64), num_iteration=result.best_iteration
            )
        )
        clicks[name] = ndcg_at_k(holdout["label"].to_numpy(), scores, sizes, k)
        per_query[name] = ndcg_per_query(relevance, scores, sizes, k)
        truth[name] = float(per_query[name].mean())
        params[name] = result.params
    return DebiasComparison(k, clicks, truth, params, paired_interval(per_query["debiased"] - per_query["biased"]))


def paired_interval(diff: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the mean per-request difference: whether a lift is more than noise."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (n_boot, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)
