"""Training: hyperparameters, determinism for a seed, the small fallback model."""

import numpy as np
import pandas as pd
import pytest

from rankops.config import Settings
from rankops.config_sections import FallbackConfig, TrainingConfig
from rankops.errors import ConfigError
from rankops.features import registry
from rankops.training.baseline import RULE_INPUTS
from rankops.training.dataset import split_by_time
from rankops.training.train import (
    fallback_features,
    lambdarank_params,
    newest_requests,
    train_fallback,
    train_ranker,
    with_hyperparameters,
)


@pytest.fixture
def split(rows: pd.DataFrame):  # type: ignore[no-untyped-def]
    return split_by_time(rows, 0.15, 0.15)


def test_hyperparameters_override_training_settings_and_lightgbm_params() -> None:
    cfg = with_hyperparameters(TrainingConfig(), {"seed": 9, "num_boost_round": 50, "num_leaves": 7, "eval_at": [5]})
    assert (cfg.seed, cfg.num_boost_round, cfg.params["num_leaves"], cfg.params["eval_at"]) == (9, 50, 7, [5])
    assert cfg.params["learning_rate"] == TrainingConfig().params["learning_rate"]
    params = lambdarank_params(cfg, 10)
    assert params["seed"] == 9 and params["deterministic"] is True and params["objective"] == "lambdarank"
    with pytest.raises(ConfigError, match="num_boost_round"):
        with_hyperparameters(TrainingConfig(), {"num_boost_round": 0})


@pytest.mark.parametrize(
    ("given", "field", "value"),
    [
        ({"random_seed": 7}, "seed", 7),
        ({"random_state": "7"}, "seed", 7),  # SageMaker passes strings
        ({"early_stopping_round": 2}, "early_stopping_rounds", 2),
        ({"n_iter_no_change": 2}, "early_stopping_rounds", 2),
        ({"early_stopping": 0}, "early_stopping_rounds", 0),  # 0: no early stopping, as in LightGBM
        ({"num_iterations": 12}, "num_boost_round", 12),
        ({"n_estimators": 12, "num_boost_round": "12"}, "num_boost_round", 12),  # two names, one value
    ],
)
def test_lightgbm_names_for_seed_rounds_and_early_stopping_win(given: dict, field: str, value: int) -> None:  # type: ignore[type-arg]
    """rankops passes seed, rounds and early stopping to LightGBM itself; a user's LightGBM alias for
    one of them used to be outranked by the configured value (random_seed=7 trained with seed 42)."""
    cfg = with_hyperparameters(TrainingConfig(), given)
    assert getattr(cfg, field) == value
    assert not set(given) & set(cfg.params), "not left behind as a LightGBM parameter to conflict"
    params = lambdarank_params(cfg, 10)
    assert params["seed"] == cfg.seed and not set(given) - {"seed"} & set(params)


def test_conflicting_names_for_one_setting_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"seed=1 and random_seed=2 are LightGBM names for the same setting"):
        with_hyperparameters(TrainingConfig(), {"seed": 1, "random_seed": 2})
    with pytest.raises(ConfigError, match=r"^invalid training hyperparameters: n_iter_no_change: .*integer"):
        with_hyperparameters(TrainingConfig(), {"n_iter_no_change": "soon"})


def test_the_alias_lists_are_lightgbms_own() -> None:
    import lightgbm as lgb

    from rankops.config_sections import EARLY_STOPPING_ALIASES, NUM_ROUNDS_ALIASES, SEED_ALIASES

    aliases = lgb.basic._ConfigAliases
    assert set(SEED_ALIASES) == aliases.get("seed")
    assert set(EARLY_STOPPING_ALIASES) == aliases.get("early_stopping_round")
    assert set(NUM_ROUNDS_ALIASES) | {"num_boost_round"} == aliases.get("num_iterations") | {"num_boost_round"}


def test_the_configuration_honours_lightgbm_names_too() -> None:
    cfg = TrainingConfig.model_validate({"params": {"random_seed": 5, "n_iter_no_change": 4, "num_leaves": 15}})
    assert (cfg.seed, cfg.early_stopping_rounds, cfg.params) == (5, 4, {"num_leaves": 15})
    with pytest.raises(ValueError, match=r"params.random_seed=5 contradicts seed=6"):
        TrainingConfig.model_validate({"seed": 6, "params": {"random_seed": 5}})
    with pytest.raises(ValueError, match=r"random_state: not a fallback parameter \(its seed is training.seed"):
        FallbackConfig(params={"random_state": 3})
    with pytest.raises(ValueError, match=r"early_stopping_round: not a fallback parameter"):
        FallbackConfig(params={"early_stopping_round": 3})


def test_fallback_features_are_the_slow_moving_ones_and_the_rules() -> None:
    chosen = fallback_features(FallbackConfig())
    assert chosen and set(chosen) < set(registry.model_features())
    assert set(RULE_INPUTS) <= set(chosen), "never blind to what the rule baseline reads"
    assert all(registry.feature(f).kind != "aggregate" or f in RULE_INPUTS for f in chosen)
    assert fallback_features(FallbackConfig(features=["price", "category_match"])) == ["price", "category_match"]
    with pytest.raises(ConfigError, match=r"\['ctr_1y'\] are not model inputs"):
        fallback_features(FallbackConfig(features=["ctr_1y"]))


def test_same_data_and_seed_give_the_same_model(split, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    first = train_ranker(split.train, split.valid, settings.training)
    second = train_ranker(split.train, split.valid, settings.training)
    x = split.holdout[first.feature_names].to_numpy(np.float64)
    assert np.array_equal(first.booster.predict(x), second.booster.predict(x))
    assert first.history == second.history and first.best_iteration == second.best_iteration
    assert first.booster.model_to_string() == second.booster.model_to_string()
    other = train_ranker(split.train, split.valid, with_hyperparameters(settings.training, {"seed": 1}))
    assert not np.array_equal(first.booster.predict(x), other.booster.predict(x))


def test_early_stopping_tracks_validation_ndcg(split, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    result = train_ranker(split.train, split.valid, settings.training)
    curve = result.history["valid_ndcg@10"]
    assert result.best_iteration == int(np.argmax(curve)) + 1
    assert len(curve) <= result.best_iteration + settings.training.early_stopping_rounds
    assert set(result.importance()) == set(registry.model_features())


def test_the_fallback_is_small_and_uses_its_own_features(split, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    result = train_fallback(split.train, split.valid, settings.training)
    cfg = settings.training.fallback
    assert result.booster.num_trees() == cfg.num_boost_round
    assert result.booster.feature_name() == fallback_features(cfg)
    dump = result.booster.dump_model()
    depth = max(_depth(t["tree_structure"]) for t in dump["tree_info"])
    assert depth <= cfg.params["max_depth"]


def _depth(node: dict) -> int:
    if "left_child" not in node:  # a leaf
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def test_the_fallback_learns_from_the_newest_whole_requests(rows: pd.DataFrame) -> None:
    newest = newest_requests(rows, 100)
    assert 0 < len(newest) <= 100 and newest["ts"].min() >= rows["ts"].iloc[len(rows) - 100]
    assert newest["request_id"].iloc[0] != rows["request_id"].iloc[len(rows) - len(newest) - 1], "whole requests"
    pd.testing.assert_frame_equal(newest, rows.iloc[len(rows) - len(newest) :].reset_index(drop=True))
    assert newest_requests(rows, len(rows)) is rows
