"""Bring your own data: LightGBM's text format in, metrics out.

The files are what LightGBM's own lambdarank example uses: svmlight/LETOR rows
(``label idx:value ...``) read by LightGBM's own parser, and a query file with one
query size per line. Training goes through the same ``fit`` as the pipeline, so with
the same parameters and seed the model, and therefore NDCG@k, are exactly what plain
``lightgbm.train`` gives on the same files; the output shows LightGBM's own validation
scores beside ours so anyone can see it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.errors import ConfigError, DataError
from rankops.training import metrics
from rankops.training.train import fit, lambdarank_params, lightgbm_message, with_hyperparameters

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config import Settings
    from rankops.config_sections import TrainingConfig

EVAL_AT_ALIASES = ("ndcg_eval_at", "eval_at", "ndcg_at", "map_eval_at", "map_at")
_LOGGER_SLOTS = ("_LOGGER", "_INFO_METHOD_NAME", "_WARNING_METHOD_NAME")


@contextmanager
def quiet_lightgbm() -> Iterator[None]:
    """LightGBM writes nothing to this process's stderr, so a failure is the CLI's one line.

    Its Python-side messages go to a silent logger (``lightgbm.register_logger``; the previous
    one is restored after), and the ``[LightGBM] [Fatal] ...`` line its C++ core prints straight
    to file descriptor 2 before raising, whatever the verbosity, is discarded: the exception
    carries the same text.
    """
    import lightgbm as lgb

    saved = [getattr(lgb.basic, slot) for slot in _LOGGER_SLOTS]
    silent = logging.getLogger("rankops.lightgbm")
    silent.propagate = False
    if not silent.handlers:
        silent.addHandler(logging.NullHandler())
    lgb.register_logger(silent)
    sys.stderr.flush()
    stderr_fd = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(stderr_fd, 2)
    finally:
        os.close(stderr_fd)
        for slot, value in zip(_LOGGER_SLOTS, saved, strict=True):
            setattr(lgb.basic, slot, value)


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
        check_params(params)  # a parameter LightGBM rejects is reported as such, not as a bad file
        raise DataError(f"LightGBM cannot read {path} (svmlight/LETOR text expected): {lightgbm_message(err)}") from err
    return data


def check_params(params: dict[str, Any]) -> None:
    """ConfigError if LightGBM rejects ``params`` on its own (checked on two rows in memory)."""
    import lightgbm as lgb

    try:
        lgb.Dataset(np.zeros((2, 1)), label=np.zeros(2), params=dict(params)).construct()
    except lgb.basic.LightGBMError as err:
        raise ConfigError(f"LightGBM rejects the training parameters: {lightgbm_message(err)}") from err


def _cutoffs(name: str, value: Any) -> list[int]:
    """``eval_at`` as LightGBM takes it (an integer, a list, or ``"1,3,5"``): positive integers."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    ks: list[int] = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        if isinstance(text, str) and text.isdigit():
            text = int(text)
        if not isinstance(text, int) or isinstance(text, bool) or text < 1:
            ks = []
            break
        ks.append(text)
    if not ks:
        raise ConfigError(f"--params {name}: expected positive integer cut-offs like [1, 3, 5], got {value!r}")
    return ks


# LightGBM's own defaults for what rankops configures (--plain-lightgbm): 100 rounds, no early stopping.
PLAIN_LIGHTGBM = {"params": {}, "num_boost_round": 100, "early_stopping_rounds": 0}


def _base_config(settings: Settings, plain: bool) -> TrainingConfig:
    return settings.training.model_copy(update=PLAIN_LIGHTGBM) if plain else settings.training


def added_defaults(settings: Settings, overrides: dict[str, Any]) -> dict[str, Any]:
    """The rankops training defaults a file-mode run adds to ``--params``: the configured LightGBM
    parameters, rounds and early stopping that ``overrides`` does not set under any LightGBM name."""
    from lightgbm.basic import _ConfigAliases

    from rankops.config_sections import owned_settings

    cfg = settings.training
    given = {alias for name in overrides for alias in _ConfigAliases.get(name)} | set(overrides)
    added = {k: v for k, v in cfg.params.items() if not _ConfigAliases.get(k) & given}
    own = owned_settings(overrides)[0]
    for field in ("num_boost_round", "early_stopping_rounds"):
        if field not in own:
            added[field] = getattr(cfg, field)
    return dict(sorted(added.items()))


def byo_params(
    settings: Settings, overrides: dict[str, Any], plain: bool = False
) -> tuple[dict[str, Any], int, int, list[int]]:
    """Effective LightGBM parameters, rounds, early-stopping rounds and evaluation cut-offs:
    the configured training parameters (or, ``plain``, LightGBM's defaults) with ``overrides``
    (``--params``) on top."""
    overrides = dict(overrides)
    given = {a: overrides.pop(a) for a in EVAL_AT_ALIASES if a in overrides}
    cutoffs = {a: _cutoffs(a, v) for a, v in given.items()}
    if len({tuple(ks) for ks in cutoffs.values()}) > 1:
        listed = " and ".join(f"{a}={v!r}" for a, v in given.items())
        raise ConfigError(f"--params {listed} are LightGBM names for the same cut-offs; give one")
    ks = next(iter(cutoffs.values()), [settings.evaluation.ndcg_k])
    cfg = with_hyperparameters(_base_config(settings, plain), overrides)
    params = {**lambdarank_params(cfg, ks[0]), "ndcg_eval_at": ks}
    return params, cfg.num_boost_round, cfg.early_stopping_rounds, ks


def train_files(
    settings: Settings,
    files: ByoFiles,
    overrides: dict[str, Any],
    model_out: Path | None = None,
    plain: bool = False,
) -> dict[str, Any]:
    """Train on ``files.train``, early-stop and evaluate on ``files.valid``; the metrics as a dict.
    LightGBM prints nothing meanwhile (:func:`quiet_lightgbm`): its failures are one-line errors."""
    train_sizes = read_query_sizes(files.train_query)
    valid_sizes = read_query_sizes(files.valid_query)
    params, rounds, stopping, ks = byo_params(settings, overrides, plain)
    with quiet_lightgbm():
        return _train(settings, files, params, rounds, stopping, ks, (train_sizes, valid_sizes), model_out)


def _train(
    settings: Settings,
    files: ByoFiles,
    params: dict[str, Any],
    rounds: int,
    stopping: int,
    ks: list[int],
    sizes: tuple[np.ndarray, np.ndarray],
    model_out: Path | None,
) -> dict[str, Any]:
    import lightgbm as lgb

    train_sizes, valid_sizes = sizes
    dataset_params = {**params, "early_stopping_round": stopping}
    dtrain = _dataset(files.train, train_sizes, files.train_query, None, dataset_params)
    dvalid = _dataset(files.valid, valid_sizes, files.valid_query, dtrain, dataset_params)
    names = [f"Column_{i}" for i in range(dtrain.num_feature())]
    result = fit(dtrain, dvalid, params, rounds, stopping, names)
    try:
        # The validation file may name fewer or more features than the training file (its highest
        # index differs): absent features are zeros, ones the model never saw are unused, exactly
        # as in the validation Dataset LightGBM early-stopped on (aligned with the training one).
        scores = np.asarray(
            result.booster.predict(
                str(files.valid), num_iteration=result.best_iteration, predict_disable_shape_check=True
            )
        )
    except lgb.basic.LightGBMError as err:
        raise DataError(f"LightGBM cannot score {files.valid}: {lightgbm_message(err)}") from err
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
