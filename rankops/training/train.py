"""LightGBM lambdarank training, deterministic for a seed.

The main ranker early-stops on validation NDCG@k; the fallback ranker is a few
shallow trees on the features that are always available. Both go through the same
``fit`` so they share the determinism settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from rankops.config_sections import EARLY_STOPPING_ALIASES, owned_settings
from rankops.errors import ConfigError, DataError
from rankops.features import registry
from rankops.training.baseline import RULE_INPUTS
from rankops.training.metrics import group_sizes

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config_sections import FallbackConfig, TrainingConfig


@dataclass
class TrainResult:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    history: dict[str, list[float]]
    feature_names: list[str]

    def importance(self) -> dict[str, float]:
        """Total gain per feature (what the importance plot shows)."""
        gains = self.booster.feature_importance(importance_type="gain")
        return {n: float(g) for n, g in zip(self.feature_names, gains, strict=True)}


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


def with_hyperparameters(cfg: TrainingConfig, hyperparameters: Mapping[str, Any]) -> TrainingConfig:
    """``cfg`` with a training job's hyperparameters applied: the seed, the number of rounds and
    early stopping, under any of LightGBM's names for them (``seed``/``random_seed``/``random_state``,
    ``num_boost_round``/``num_iterations``/..., ``early_stopping_rounds``/``early_stopping_round``/
    ``n_iter_no_change``/...), replace the configured ones; anything else is a LightGBM parameter."""
    from rankops.config_sections import TrainingConfig

    try:
        own, given_as, lgb_params = owned_settings(hyperparameters)
    except ValueError as err:
        raise ConfigError(f"invalid training hyperparameters: {err}") from err
    try:
        return TrainingConfig.model_validate({**cfg.model_dump(), **own, "params": {**cfg.params, **lgb_params}})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(given_as.get(str(p), str(p)) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"invalid training hyperparameters: {problems}") from err


def fallback_features(cfg: FallbackConfig) -> list[str]:
    """Configured fallback inputs, else every model input that is not a windowed aggregate, plus the
    rule baseline's inputs: the server's item snapshot holds them through a store outage
    (rankops.serving.snapshot), and a fallback blind to what the rule reads ranked worse than the rule."""
    declared = registry.model_features()
    if cfg.features:
        unknown = [f for f in cfg.features if f not in declared]
        if unknown:
            raise ConfigError(f"training.fallback.features {unknown} are not model inputs; choose from {declared}")
        return [f for f in declared if f in cfg.features]
    return [f for f in declared if registry.feature(f).kind != "aggregate" or f in RULE_INPUTS]


def to_lgb_dataset(
    frame: pd.DataFrame, features: list[str], reference: lgb.Dataset | None = None, position: bool = False
) -> lgb.Dataset:
    """``position``: hand LightGBM the logged positions, so lambdarank learns a position-bias
    factor per position instead of crediting position-caused clicks to the features."""
    import lightgbm as lgb

    missing = [f for f in features if f not in frame]
    if missing:
        raise DataError(f"training rows lack feature columns {missing}; rebuild the dataset with the processing job")
    return lgb.Dataset(
        frame[features].to_numpy(np.float64),
        label=frame["label"].to_numpy(),
        group=group_sizes(frame["request_id"].to_numpy()),
        feature_name=features,
        reference=reference,
        free_raw_data=False,
        position=frame["position"].to_numpy(np.int32) if position else None,
    )


def lightgbm_message(err: Exception) -> str:
    """A LightGBM error on one line, without the C++ source location of failed checks
    (``Check failed: (num_leaves) > (1) at .../config_auto.cpp, line 352 .``)."""
    text = " ".join(str(err).split())
    return re.sub(r" at \S+\.(?:cpp|h|hpp), line \d+ ?\.?$", "", text)


def fit(
    dtrain: lgb.Dataset,
    dvalid: lgb.Dataset,
    params: dict[str, Any],
    num_boost_round: int,
    early_stopping_rounds: int | None,
    features: list[str],
) -> TrainResult:
    """``lightgbm.train`` with per-iteration validation metrics recorded.

    ``early_stopping_rounds`` is the resolved setting (:func:`with_hyperparameters` maps
    LightGBM's names for it onto the configuration; ``None`` or 0: no early stopping). It is
    requested through LightGBM's own ``early_stopping_round`` parameter, so the run is exactly
    what plain ``lightgbm.train`` does with the same parameters.
    """
    import lightgbm as lgb

    params = {k: v for k, v in params.items() if k not in EARLY_STOPPING_ALIASES}
    if early_stopping_rounds:
        params["early_stopping_round"] = early_stopping_rounds
    history: dict[str, dict[str, list[float]]] = {}
    try:
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=num_boost_round,
            valid_sets=[dvalid],
            valid_names=["valid"],
            callbacks=[lgb.record_evaluation(history)],
        )
    except lgb.basic.LightGBMError as err:
        raise DataError(f"LightGBM rejected the training data or parameters: {lightgbm_message(err)}") from err
    return TrainResult(
        booster,
        params,
        booster.best_iteration or booster.current_iteration(),
        {f"valid_{k}": list(v) for k, v in history.get("valid", {}).items()},
        features,
    )


def train_ranker(
    train: pd.DataFrame, valid: pd.DataFrame, cfg: TrainingConfig, eval_k: int = 10, features: list[str] | None = None
) -> TrainResult:
    """The main ranker: lambdarank, early stopping on validation NDCG@``eval_k``."""
    features = features or registry.model_features()
    dtrain = to_lgb_dataset(train, features, position=cfg.position_debias)
    dvalid = to_lgb_dataset(valid, features, reference=dtrain)
    params = lambdarank_params(cfg, eval_k)
    return fit(dtrain, dvalid, params, cfg.num_boost_round, cfg.early_stopping_rounds, features)


def newest_requests(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """The newest whole requests holding at most ``max_rows`` rows (rows are in time order,
    each request contiguous)."""
    if len(frame) <= max_rows:
        return frame
    ids = frame["request_id"].to_numpy()
    starts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    later = starts[starts >= len(frame) - max_rows]
    return frame.iloc[int(later[0]) if len(later) else len(frame) :].reset_index(drop=True)


def train_fallback(train: pd.DataFrame, valid: pd.DataFrame, cfg: TrainingConfig, eval_k: int = 10) -> TrainResult:
    """The fallback ranker: a fixed, small number of shallow trees (no early stopping, so
    its size never depends on the data) on the features that are always available, learned
    from the newest ``fallback.max_train_rows`` rows of whole requests."""
    features = fallback_features(cfg.fallback)
    dtrain = to_lgb_dataset(newest_requests(train, cfg.fallback.max_train_rows), features)
    dvalid = to_lgb_dataset(valid, features, reference=dtrain)
    base = lambdarank_params(cfg, eval_k)
    params = {**{k: v for k, v in base.items() if k not in cfg.params}, **cfg.fallback.params}
    return fit(dtrain, dvalid, params, cfg.fallback.num_boost_round, None, features)
