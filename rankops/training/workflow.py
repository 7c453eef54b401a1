"""The lake-to-registry workflow: the three pipeline jobs, run locally in sequence.

Used by ``rankops train`` and the demo. It lays the SageMaker contracts out under
``RANKOPS_HOME/sagemaker/<run>/`` and calls the same job functions the container
entrypoints call, wiring outputs to inputs by path the way the pipeline wires S3
locations: processing ``output/{train,validation}`` are the training channels, the
training ``model`` folder and processing ``output/holdout`` are the evaluation inputs.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankops.lake import Lake, new_run_id
from rankops.sagemaker_contract import (
    layout_training,
    processing_paths,
    read_hyperparameters,
    training_paths,
)
from rankops.training.jobs import code_version, evaluation, processing, training

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
    fallback: dict[str, float] = field(default_factory=dict)
    fallback_version: str = ""
    gate: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, dict[str, float]] = field(default_factory=dict)
    dataset_hash: str = ""
    reused: bool = False
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    job_dir: str = ""
    position_debias: dict[str, Any] = field(default_factory=dict)


def debias_on_truth(lake: Lake, settings: Settings, dataset: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """With ``training.position_debias`` on a synthetic lake: both rankers' holdout NDCG@k on
    clicks and on the hidden true relevance (``rankops.training.debias``). Two extra trainings,
    so only when asked for."""
    from rankops.training import debias

    if not settings.training.position_debias:
        return {}
    truth = debias.true_relevance(lake)
    if truth is None:
        say("position debiasing: no ground truth (the lake's events are not synthetic), not compared")
        return {}
    relevance = debias.attach_truth(dataset.holdout, truth)
    k = settings.evaluation.ndcg_k
    result = debias.compare(dataset.train, dataset.validation, dataset.holdout, relevance, settings.training, k)
    say(
        f"position debiasing, holdout NDCG@{k} on true relevance: debiased {result.truth['debiased']:.4f} vs "
        f"biased {result.truth['biased']:.4f}, lift 95% CI [{result.truth_lift_ci95[0]:.4f}, "
        f"{result.truth_lift_ci95[1]:.4f}] (on clicks: {result.clicks['debiased']:.4f} vs "
        f"{result.clicks['biased']:.4f})"
    )
    return result.as_dict()


def prune_local_runs(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` local job folders (their names sort by time).
    Everything worth keeping is in the registry and the lake by then."""
    runs = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name) if folder.is_dir() else []
    doomed = runs[:-keep]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def train_from_lake(
    spark: SparkSession,
    lake: Lake,
    settings: Settings,
    alias: str | None = None,
    progress: Callable[[str], None] | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> TrainReport:
    """Process, train (or reuse an identical registered model), evaluate against the
    champion and the baselines on the newest requests, gate, and move aliases.

    ``alias``: what a passing challenger becomes (``champion``, ``challenger``, or ``''``
    for nothing); ``None`` uses ``gate.on_pass``.
    """
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    run = new_run_id()
    base = settings.home / "sagemaker" / run
    execution_id = f"local-{run}"
    code = code_version(os.environ)

    proc = processing_paths({}, base / "processing")
    dataset = processing.run(settings, proc, spark=spark, lake=lake)
    splits = dataset.manifest["splits"]
    say(
        f"training set {dataset.dataset_hash[:12]}: {splits['train']['rows']:,} train / "
        f"{splits['validation']['rows']:,} validation / {splits['holdout']['rows']:,} holdout rows "
        "(split by request time)"
    )

    env = layout_training(
        base / "training",
        {"train": proc.output("train"), "validation": proc.output("validation")},
        {**(hyperparameters or {}), "pipeline_execution_id": execution_id},
    )
    paths = training_paths(env, base / "training")
    trained = training.run(settings, paths, read_hyperparameters(paths.hyperparameters_file), code_version=code)
    verb = "reused registered" if trained.reused else "trained and registered"
    say(
        f"LightGBM lambdarank: {verb} version {trained.version} (best iteration {trained.best_iteration}), "
        f"fallback version {trained.fallback_version}"
    )

    eval_paths = processing_paths(
        {}, base / "evaluation", inputs={"model": paths.model_dir, "holdout": proc.output("holdout")}
    )
    evaluated = evaluation.run(
        settings, eval_paths, lake=lake, on_pass=alias, code_version=code, pipeline_execution_id=execution_id
    )
    decision = evaluated.decision
    say(f"gate: {decision.decision} version {trained.version} ({'; '.join(decision.reasons)})")
    name = settings.mlflow.model_name
    say(
        f"aliases of {name}: " + (", ".join(f"@{a}=v{v}" for a, v in sorted(evaluated.aliases[name].items())) or "none")
    )

    compared = debias_on_truth(lake, settings, dataset, say)
    prune_local_runs(settings.home / "sagemaker", settings.training.keep_local_runs)
    holdout = dataset.holdout
    example = holdout[holdout["request_id"] == holdout["request_id"].iloc[0]]
    report = evaluated.report
    return TrainReport(
        version=trained.version,
        run_id=trained.run_id,
        best_iteration=trained.best_iteration,
        rows={"train": len(dataset.train), "valid": len(dataset.validation), "holdout": len(holdout)},
        model=report["challenger"]["overall"],
        baselines={b: m["overall"] for b, m in report["baselines"].items()},
        holdout_example={
            "user_id": example["user_id"].iloc[0],
            "query_category": example["query_category"].iloc[0],
            "device": example["device"].iloc[0],
            "candidates": example["item_id"].tolist(),
        },
        seconds=time.perf_counter() - started,
        fallback=report["fallback"]["overall"],
        fallback_version=trained.fallback_version,
        gate=decision.to_dict(),
        segments=report["challenger"]["segments"],
        dataset_hash=dataset.dataset_hash,
        reused=trained.reused,
        aliases=evaluated.aliases,
        job_dir=str(base),
        position_debias=compared,
    )
