"""The lake-to-registry training workflow: dataset, split, train, evaluate, register.

Used by ``rankops train`` and the demo; the SageMaker jobs split the same steps
across processing, training and evaluation containers.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops import registry
from rankops.features.offline import feature_set_version
from rankops.lake import Lake
from rankops.training import evaluate, metrics
from rankops.training.baseline import RULE_INPUTS, rule_scores
from rankops.training.dataset import build_training_frame, split_by_time
from rankops.training.train import train_ranker

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from rankops.config import Settings


@dataclass
class TrainReport:
    version: str
    run_id: str
    best_iteration: int
    rows: dict[str, int]
    model: dict[str, float]
    baselines: dict[str, dict[str, float]]
    holdout_example: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def git_sha() -> str:
    try:
        command = ["git", "rev-parse", "--short", "HEAD"]  # git from PATH is intended
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=5).stdout.strip()  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def train_from_lake(
    spark: SparkSession,
    lake: Lake,
    settings: Settings,
    alias: str | None = registry.CHAMPION,
    progress: Callable[[str], None] | None = None,
) -> TrainReport:
    """Train on the lake's logged requests, evaluate against baselines on the newest
    requests, register the model and (optionally) give it ``alias``."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    frame = build_training_frame(spark, lake, settings)
    split = split_by_time(frame, settings.training.holdout_fraction)
    say(
        f"training set: {len(split.train):,} train / {len(split.valid):,} validation / "
        f"{len(split.holdout):,} holdout rows (split by request time)"
    )
    result = train_ranker(split.train, split.valid, settings.training, settings.evaluation.ndcg_k)
    say(f"LightGBM lambdarank: best iteration {result.best_iteration}")
    holdout = split.holdout
    catalog = int(frame["item_id"].nunique())
    head = metrics.popularity_head(
        split.train["item_id"].to_numpy(), split.train["clicked"].to_numpy(), settings.evaluation.long_tail_share
    )
    x_holdout = holdout[result.feature_names].to_numpy(np.float64)
    model_metrics = evaluate.evaluate_scores(
        holdout, np.asarray(result.booster.predict(x_holdout)), settings.evaluation, catalog, head
    )
    baselines = {
        "random": evaluate.evaluate_scores(
            holdout, evaluate.random_scores(holdout, settings.training.seed), settings.evaluation, catalog, head
        ),
        "rule": evaluate.evaluate_scores(
            holdout, rule_scores({c: holdout[c].to_numpy() for c in RULE_INPUTS}), settings.evaluation, catalog, head
        ),
        "popularity": evaluate.evaluate_scores(
            holdout, evaluate.popularity_scores(split.train, holdout), settings.evaluation, catalog, head
        ),
    }
    tags = {"feature_set_version": feature_set_version(settings), "code_version": git_sha(), "env": settings.env}
    registered = registry.log_ranker(
        settings,
        result.booster,
        params=result.params,
        history=result.history,
        tags=tags,
        metrics={
            **{f"holdout_{k}": v for k, v in model_metrics.items()},
            **{f"{b}_{k}": v for b, m in baselines.items() for k, v in m.items()},
        },
        input_example=holdout[result.feature_names].head(5),
    )
    if alias:
        registry.set_alias(settings, alias, registered.version)
    say(f"registered {registered.name} version {registered.version}" + (f" as @{alias}" if alias else ""))
    first = holdout["request_id"].iloc[0]
    example = holdout[holdout["request_id"] == first]
    return TrainReport(
        registered.version,
        registered.run_id,
        result.best_iteration,
        {"train": len(split.train), "valid": len(split.valid), "holdout": len(holdout)},
        model_metrics,
        baselines,
        {
            "user_id": example["user_id"].iloc[0],
            "query_category": example["query_category"].iloc[0],
            "device": example["device"].iloc[0],
            "candidates": example["item_id"].tolist(),
        },
        time.perf_counter() - started,
    )
