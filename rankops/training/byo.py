"""Bring your own data: LightGBM's text format in, metrics out.

The files are what LightGBM's own lambdarank example uses: svmlight/LETOR rows
(``label idx:value ...``) read by LightGBM's own parser, and a query file with one
query size per line. Training goes through the same ``fit`` as the pipeline, so with
the same parameters and seed the model, and therefore NDCG@k, are exactly what plain
``lightgbm.train`` gives on the same files; the output shows LightGBM's own validation
scores beside ours so anyone can see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.errors import DataError
from rankops.training import metrics
from rankops.training.train import fit, lambdarank_params, with_hyperparameters

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config import Settings

EVAL_AT_ALIASES = ("ndcg_eval_at", "eval_at", "ndcg_at", "map_eval_at", "map_at")


@dataclass(frozen=True)
class ByoFiles:
    train: Path
    train_query: Path
    valid: Path
    valid_query: Path


def read_query_sizes(path: Path) -> np.ndarray:
    """One positive integer per line: the number of consecutive rows of each query."""
    if not path.is_file():
        raise DataError(f"query file {path} does not exist")
    try:
        sizes = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except ValueError as err:
        raise DataError(f"query file {path}: expected one integer per line ({err})") from err
    if len(sizes) == 0 or (sizes <= 0).any():
        raise DataError(f"query file {path}: every query size must be a positive integer")
    return sizes


def _dataset(
    path: Path, sizes: np.ndarray, query_file: Path, reference: lgb.Dataset | None, params: dict[str, Any]
) -> lgb.Dataset:
    """Parsed by LightGBM itself, with the training parameters (as ``lightgbm.train`` would),
    so dataset parameters such as ``max_bin`` apply exactly as in a plain run."""
    import lightgbm as lgb

    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    with path.open("rb") as lines:
        rows = sum(1 for line in lines if line.strip())
    if rows != sizes.sum():
        raise DataError(f"query file {query_file} covers {sizes.sum()} rows but {path} has {rows}")
    data = lgb.Dataset(str(path), group=sizes, reference=reference, params=dict(params))
    try:
        data.construct()
    except lgb.basic.LightGBMError as err:
        raise DataError(f"LightGBM cannot read {path} (svmlight/LETOR text expected): {err}") from err
    return data


def byo_params(settings: Settings, overrides: dict[str, Any]) -> tuple[dict[str, Any], int, int, list[int]]:
    """Effective LightGBM parameters, rounds, early-stopping rounds and evaluation cut-offs:
    the configured training parameters with ``overrides`` (``--params``) on top."""
    overrides = dict(overrides)
    eval_at = next((overrides.pop(a) for a in EVAL_AT_ALIASES if a in overrides), [settings.evaluation.ndcg_k])
    ks = [int(k) for k in (eval_at if isinstance(eval_at, list) else [eval_at])]
    cfg = with_hyperparameters(settings.training, overrides)
    params = {**lambdarank_params(cfg, ks[0]), "ndcg_eval_at": ks}
    return params, cfg.num_boost_round, cfg.early_stopping_rounds, ks


def train_files(
    settings: Settings, files: ByoFiles, overrides: dict[str, Any], model_out: Path | None = None
) -> dict[str, Any]:
    """Train on ``files.train``, early-stop and evaluate on ``files.valid``; the metrics as a dict."""
    train_sizes = read_query_sizes(files.train_query)
    valid_sizes = read_query_sizes(files.valid_query)
    params, rounds, stopping, ks = byo_params(settings, overrides)
    dataset_params = {**params, "early_stopping_round": stopping}
    dtrain = _dataset(files.train, train_sizes, files.train_query, None, dataset_params)
    dvalid = _dataset(files.valid, valid_sizes, files.valid_query, dtrain, dataset_params)
    names = [f"Column_{i}" for i in range(dtrain.num_feature())]
    result = fit(dtrain, dvalid, params, rounds, stopping, names)
    scores = np.asarray(result.booster.predict(str(files.valid), num_iteration=result.best_iteration))
    labels = np.asarray(dvalid.get_label())
    out: dict[str, Any] = {f"ndcg@{k}": metrics.ndcg_at_k(labels, scores, valid_sizes, k) for k in ks}
    map_k = settings.evaluation.map_k
    out[f"map@{map_k}"] = metrics.map_at_k(labels, scores, valid_sizes, map_k)
    out["best_iteration"] = result.best_iteration
    out["lightgbm_valid"] = {k: float(v) for k, v in result.booster.best_score.get("valid", {}).items()}
    out["rows"] = {"train": int(train_sizes.sum()), "valid": int(valid_sizes.sum())}
    out["queries"] = {"train": len(train_sizes), "valid": len(valid_sizes)}
    out["params"] = {**params, "num_boost_round": rounds, "early_stopping_round": stopping}
    if model_out is not None:
        model_out.parent.mkdir(parents=True, exist_ok=True)
        result.booster.save_model(str(model_out))
        out["model"] = str(model_out)
    return out
