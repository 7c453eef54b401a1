"""Training job: channels -> LightGBM lambdarank + fallback -> MLflow run and versions -> SM_MODEL_DIR.

Registration happens here (docs/training.md, "Where registration happens"): the job
registers both models as new versions, tagged with their lineage and an idempotency
key (dataset hash + effective training configuration + seed + feature lists + the code:
LightGBM's version, rankops' version and code version without a ``-dirty`` marker). If a
version with that key exists, nothing is trained: the registered model is copied into
``SM_MODEL_DIR`` and its version returned, so a re-run of a pipeline snapshot never
creates a duplicate. ``SM_MODEL_DIR`` receives the MLflow model directory (what the
``serve`` entrypoint loads from ``/opt/ml/model``), its ``VERSION``, and the fallback
model with its own ``VERSION`` under ``fallback/``.

Both models are compiled here, at registration, for the serving platform (docs/scoring.md):
the compiled artifact goes to the run (``compiled/model``, ``compiled/fallback``), is announced
by the version's ``compiled.*`` tags, and is copied beside each model in ``SM_MODEL_DIR``
(``compiled/``, ``fallback/compiled/``). A failed compile is a tag, not a failed job.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops import __version__, ranker_model, registry
from rankops.features import registry as features
from rankops.features.offline import feature_set_version
from rankops.monitoring import score_drift
from rankops.scoring import artifacts
from rankops.training import tracking
from rankops.training.jobs import clean_code_version
from rankops.training.processing import read_channel, read_manifest, same_dataset
from rankops.training.train import (
    TrainResult,
    fallback_features,
    train_fallback,
    train_ranker,
    with_hyperparameters,
)

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.config_sections import TrainingConfig
    from rankops.sagemaker_contract import TrainingPaths

FALLBACK_DIR = "fallback"
VERSION_FILE = "VERSION"
OUTPUT_FILE = "training.json"
# Hyperparameters that describe the run rather than the model.
RUN_KEYS = ("pipeline_execution_id", "code_version")
BEST_ITERATION_TAG = "best_iteration"


@dataclass(frozen=True)
class TrainingOutcome:
    version: str
    fallback_version: str
    run_id: str
    reused: bool
    dataset_hash: str
    idempotency_key: str
    best_iteration: int
    valid_metrics: dict[str, float]
    model_dir: str
    seconds: dict[str, float]


def idempotency_key(dataset_hash: str, cfg: TrainingConfig, eval_k: int, code_version: str) -> str:
    """What makes two trainings the same: data, effective configuration (seed included), inputs,
    and the code that trains (LightGBM's and rankops' versions, the code version). A local
    checkout's ``-dirty`` marker is left out: two identical runs from one checkout are one training."""
    import lightgbm

    payload = {
        "dataset_hash": dataset_hash,
        "training": cfg.model_dump(mode="json", exclude={"keep_local_runs"}),  # not about the model
        "eval_k": eval_k,
        "features": features.model_features(),
        "fallback_features": fallback_features(cfg.fallback),
        "lightgbm": lightgbm.__version__,
        "rankops": __version__,
        "code_version": clean_code_version(code_version),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _reset_dir(path: Path) -> None:
    """The job owns its model folder: start it empty (SageMaker hands it over empty)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def _log_run(
    settings: Settings,
    main: TrainResult,
    fallback: TrainResult,
    example: Any,
    manifest: Mapping[str, Any],
    cfg: TrainingConfig,
    tags: dict[str, str],
    compiled: Mapping[str, tuple[Path, dict[str, str]]],
) -> tuple[registry.RegisteredModel, registry.RegisteredModel]:
    import mlflow
    from mlflow import MlflowClient

    _, experiment_id = registry.connect(settings)
    run_tags = {
        **tags,
        BEST_ITERATION_TAG: str(main.best_iteration),
        f"{FALLBACK_DIR}.{BEST_ITERATION_TAG}": str(fallback.best_iteration),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"train-{tags['dataset_hash'][:8]}", tags=run_tags
    ) as run:
        run_id = run.info.run_id
        summary = {
            "best_iteration": float(main.best_iteration),
            **{k.removeprefix("valid_"): v[main.best_iteration - 1] for k, v in main.history.items() if v},
        }
        params = {
            **main.params,
            "num_boost_round": cfg.num_boost_round,
            "features": ",".join(main.feature_names),
            **{f"fallback.{k}": v for k, v in fallback.params.items()},
            "fallback.num_boost_round": cfg.fallback.num_boost_round,
            "fallback.features": ",".join(fallback.feature_names),
        }
        registry.log_params_and_metrics(
            run_id, params, main.history, {f"valid_best_{k}": v for k, v in summary.items()}
        )
        tracking.log_importance(run_id, main, "model")
        tracking.log_importance(run_id, fallback, FALLBACK_DIR)
        MlflowClient().log_dict(run_id, dict(manifest), "dataset/manifest.json")
        version_tags = {**tags, "run_id": run_id}
        name, fb_name = settings.mlflow.model_name, registry.fallback_model_name(settings)
        reg = registry.register(
            ranker_model.log_model(main.booster, example[main.feature_names], "model"),
            name,
            run_id,
            {**version_tags, **compiled["model"][1], BEST_ITERATION_TAG: str(main.best_iteration)},
        )
        fb = registry.register(  # its own size: a fixed number of trees, no early stopping
            ranker_model.log_model(fallback.booster, example[fallback.feature_names], FALLBACK_DIR),
            fb_name,
            run_id,
            {**version_tags, **compiled[FALLBACK_DIR][1], BEST_ITERATION_TAG: str(fallback.best_iteration)},
        )
        for folder, compiled_tags in compiled.values():
            artifacts.log_compiled(run_id, folder, compiled_tags)
    return reg, fb


def _compile(scratch: Path, valid: Any, models: Mapping[str, TrainResult]) -> dict[str, tuple[Path, dict[str, str]]]:
    """Compile each model for the serving platform (its verification sample drawn from the
    validation rows): artifact name -> (folder, version tags announcing it or its failure)."""
    out = {}
    for artifact, result in models.items():
        folder = scratch / artifact
        rows = valid[result.feature_names].to_numpy(np.float64)
        out[artifact] = (folder, artifacts.compile_for_registration(result.booster, rows, folder, artifact))
    return out


def run(
    settings: Settings,
    paths: TrainingPaths,
    hyperparameters: Mapping[str, Any],
    *,
    code_version: str,
    pipeline_execution_id: str = "",
) -> TrainingOutcome:
    """Train (or reuse), register, and fill ``SM_MODEL_DIR`` and ``SM_OUTPUT_DATA_DIR``."""
    clock = _Clock()
    hp = dict(hyperparameters)
    execution_id = str(hp.pop("pipeline_execution_id", "") or pipeline_execution_id)
    code_version = str(hp.pop("code_version", "") or code_version)
    cfg = with_hyperparameters(settings.training, hp)
    eval_k = settings.evaluation.ndcg_k
    manifests = {c: read_manifest(paths.channel(c)) for c in ("train", "validation")}
    dataset_hash = same_dataset(manifests)
    key = idempotency_key(dataset_hash, cfg, eval_k, code_version)
    name, fb_name = settings.mlflow.model_name, registry.fallback_model_name(settings)
    model_dir = paths.model_dir
    _reset_dir(model_dir)
    existing = registry.find_version(settings, registry.IDEMPOTENCY_TAG, key, name)
    existing_fb = registry.find_version(settings, registry.IDEMPOTENCY_TAG, key, fb_name)
    clock.lap("prepare")

    scratch = Path(tempfile.mkdtemp(prefix="rankops-compiled-"))
    if existing and existing_fb:
        registry.download_model(settings, existing, model_dir, name)
        registry.download_model(settings, existing_fb, model_dir / FALLBACK_DIR, fb_name)
        artifacts.copy_into(artifacts.download_compiled(settings, name, existing, scratch / "model"), model_dir)
        fb_compiled = artifacts.download_compiled(settings, fb_name, existing_fb, scratch / FALLBACK_DIR)
        artifacts.copy_into(fb_compiled, model_dir / FALLBACK_DIR)
        info = next(v for v in registry.list_versions(settings, [name]) if v.version == existing)
        best_iteration, run_id, version, fb_version = (
            int(info.tags.get(BEST_ITERATION_TAG, "0")),
            info.run_id,
            existing,
            existing_fb,
        )
        best: dict[str, float] = {}
        clock.lap("reuse")
    else:
        train, _ = read_channel(paths.channel("train"), "train")
        valid, _ = read_channel(paths.channel("validation"), "validation")
        clock.lap("read")
        main = train_ranker(train, valid, cfg, eval_k)
        clock.lap("train")
        fallback = train_fallback(train, valid, cfg, eval_k)
        clock.lap("train_fallback")
        tags = {
            registry.IDEMPOTENCY_TAG: key,
            "dataset_hash": dataset_hash,
            "feature_set_version": feature_set_version(settings),
            "code_version": code_version,
            "pipeline_execution_id": execution_id,
            "seed": str(cfg.seed),
        }
        compiled = _compile(scratch, valid, {"model": main, FALLBACK_DIR: fallback})
        clock.lap("compile")
        example = valid.head(5)
        reg, fb = _log_run(settings, main, fallback, example, manifests["train"], cfg, tags, compiled)
        # the drift job's reference for this model's served scores (rankops.monitoring.score_drift)
        from mlflow import MlflowClient

        scores = main.booster.predict(valid[main.feature_names])
        MlflowClient().log_dict(reg.run_id, score_drift.score_reference(scores), score_drift.ARTIFACT)
        clock.lap("mlflow")
        ranker_model.save_model(main.booster, model_dir, example[main.feature_names])  # empty: allowed
        ranker_model.save_model(fallback.booster, model_dir / FALLBACK_DIR, example[fallback.feature_names])
        artifacts.copy_into(compiled["model"][0], model_dir)
        artifacts.copy_into(compiled[FALLBACK_DIR][0], model_dir / FALLBACK_DIR)
        clock.lap("save")
        best = {k.removeprefix("valid_"): v[main.best_iteration - 1] for k, v in main.history.items() if v}
        best_iteration, run_id, version, fb_version = main.best_iteration, reg.run_id, reg.version, fb.version
    shutil.rmtree(scratch, ignore_errors=True)
    (model_dir / VERSION_FILE).write_text(version + "\n")
    (model_dir / FALLBACK_DIR / VERSION_FILE).write_text(fb_version + "\n")
    reused = bool(existing and existing_fb)
    outcome = TrainingOutcome(
        version, fb_version, run_id, reused, dataset_hash, key, best_iteration, best, str(model_dir), clock.laps
    )
    paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    (paths.output_data_dir / OUTPUT_FILE).write_text(json.dumps(asdict(outcome), indent=2, sort_keys=True))
    return outcome


class _Clock:
    """Seconds spent in each phase (reported in training.json and by the benchmark)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = round(now - self._last, 4)
        self._last = now
