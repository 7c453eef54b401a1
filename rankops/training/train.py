"""LightGBM lambdarank training, deterministic for a seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rankops.features import registry
from rankops.training.metrics import group_sizes

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config_sections import TrainingConfig


@dataclass
class TrainResult:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    history: dict[str, list[float]]
    feature_names: list[str]


def lambdarank_params(cfg: TrainingConfig, eval_k: int) -> dict[str, Any]:
    """Base parameters, then the configured ones on top. ``deterministic`` and a fixed
    thread count make the same data and seed give the same model."""
    params: dict[str, Any] = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "ndcg_eval_at": [eval_k],
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbosity": -1,
    }
    params.update(cfg.params)
    return params


def to_lgb_dataset(frame: pd.DataFrame, features: list[str], reference: lgb.Dataset | None = None) -> lgb.Dataset:
    import lightgbm as lgb

    return lgb.Dataset(
        frame[features].to_numpy(np.float64),
        label=frame["label"].to_numpy(),
        group=group_sizes(frame["request_id"].to_numpy()),
        feature_name=features,
        reference=reference,
        free_raw_data=False,
    )


def train_ranker(
    train: pd.DataFrame, valid: pd.DataFrame, cfg: TrainingConfig, eval_k: int = 10, features: list[str] | None = None
) -> TrainResult:
    import lightgbm as lgb

    features = features or registry.model_features()
    params = lambdarank_params(cfg, eval_k)
    dtrain = to_lgb_dataset(train, features)
    dvalid = to_lgb_dataset(valid, features, reference=dtrain)
    history: dict[str, dict[str, list[float]]] = {}
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False), lgb.record_evaluation(history)],
    )
    return TrainResult(
        booster,
        params,
        booster.best_iteration or cfg.num_boost_round,
        {f"valid_{k}": v for k, v in history.get("valid", {}).items()},
        features,
    )
