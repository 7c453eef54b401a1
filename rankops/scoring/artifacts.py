"""Where compiled artifacts live: beside the LightGBM model, in MLflow and in a model folder.

* In MLflow: the training run's artifact ``compiled/<model artifact>`` (``compiled/model``,
  ``compiled/fallback``), announced by the model version's tags ``compiled.*`` (compiler,
  its version, target, the object's SHA-256, compile seconds and ``compiled.artifact``, the
  run-relative path). A failed compile leaves ``compiled.error`` instead: the version still
  registers and serves through LightGBM.
* In a model folder (``SM_MODEL_DIR``, ``/opt/ml/model``): ``<model dir>/compiled/`` and
  ``<model dir>/fallback/compiled/``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rankops.errors import ModelError
from rankops.scoring import compiled
from rankops.scoring.scorer import Scorer, load_scorer

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config import Settings

log = logging.getLogger("rankops.scoring")

ARTIFACT_TAG = compiled.TAG_PREFIX + "artifact"
ERROR_TAG = compiled.TAG_PREFIX + "error"
SHA_TAG = compiled.TAG_PREFIX + "sha256"


def compile_for_registration(booster: lgb.Booster, rows: np.ndarray, out_dir: Path, artifact: str) -> dict[str, str]:
    """Compile ``booster`` into ``out_dir`` and return the version tags announcing it (run
    artifact ``compiled/<artifact>``). A compile that fails is reported in ``compiled.error``
    and leaves no artifact: registration never fails for want of a compiled model."""
    missing = compiled.available()
    if missing:
        return {ERROR_TAG: missing[:250]}
    try:
        meta = compiled.compile_booster(booster, rows, out_dir)
    except Exception as err:  # LLVM can fail in many ways; the LightGBM model is still good
        log.warning("compiling %s failed; it will serve through LightGBM: %r", artifact, err)
        shutil.rmtree(out_dir, ignore_errors=True)
        return {ERROR_TAG: repr(err)[:250]}
    return {**meta.tags(), ARTIFACT_TAG: f"{compiled.COMPILED_DIR}/{artifact}"}


def log_compiled(run_id: str, folder: Path, tags: dict[str, str]) -> None:
    """Upload ``folder`` to the run at the path ``tags`` announce (nothing if compile failed)."""
    if ARTIFACT_TAG not in tags:
        return
    from mlflow import MlflowClient

    MlflowClient().log_artifacts(run_id, str(folder), tags[ARTIFACT_TAG])


def attach_compiled(
    settings: Settings, name: str, version: str, booster: lgb.Booster, rows: np.ndarray, artifact: str = "model"
) -> dict[str, str]:
    """Compile an already registered version and announce it by tags (models registered outside
    the training job: the benchmarks, tests, a version registered before compiled scoring)."""
    from rankops import registry

    client, _ = registry.connect(settings)
    run_id = client.get_model_version(name, version).run_id
    with tempfile.TemporaryDirectory(prefix="rankops-compile-") as tmp:
        tags = compile_for_registration(booster, rows, Path(tmp) / artifact, artifact)
        if run_id:
            log_compiled(run_id, Path(tmp) / artifact, tags)
        else:
            tags = {ERROR_TAG: f"version {version} has no run to hold a compiled artifact"}
    registry.set_version_tags(settings, version, tags, name)
    return tags


def download_compiled(settings: Settings, name: str, version: str, scratch: Path) -> Path | None:
    """Download version ``version`` of ``name``'s compiled artifact under ``scratch`` and return
    its folder (``None`` if the version has none: older than compiled scoring, or its compile failed)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from rankops import registry

    client, _ = registry.connect(settings)
    info = client.get_model_version(name, version)
    path = info.tags.get(ARTIFACT_TAG)
    if not path or not info.run_id:
        return None
    try:
        local = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path=path, dst_path=str(scratch))
    except (MlflowException, OSError) as err:
        log.warning("version %s of %s: cannot download its compiled artifact: %s", version, name, err)
        return None
    return Path(local)


def scorer_for_version(settings: Settings, booster: lgb.Booster, name: str, version: str, threads: int = 1) -> Scorer:
    """The scorer of a registered version: its compiled artifact if announced and verified."""
    from rankops import registry

    client, _ = registry.connect(settings)
    try:
        tags = client.get_model_version(name, version).tags
    except Exception as err:  # no registry answer: the LightGBM model still scores
        log.warning("version %s of %s: cannot read its tags (%s); scoring with LightGBM", version, name, err)
        return Scorer(booster, None, threads, "registry tags unavailable")
    if ARTIFACT_TAG not in tags:
        reason = tags.get(ERROR_TAG, "no compiled artifact")
        return Scorer(booster, None, threads, reason)
    with tempfile.TemporaryDirectory(prefix="rankops-compiled-") as tmp:
        folder = download_compiled(settings, name, version, Path(tmp))
        return load_scorer(booster, folder, threads=threads, expected_sha256=tags.get(SHA_TAG),
                           label=f"{name} v{version}")  # fmt: skip


def scorer_for_dir(booster: lgb.Booster, model_dir: Path, threads: int = 1) -> Scorer:
    """The scorer of an MLflow model folder: ``<model_dir>/compiled`` if present and verified."""
    return load_scorer(booster, model_dir / compiled.COMPILED_DIR, threads=threads, label=str(model_dir))


def copy_into(folder: Path | None, model_dir: Path) -> None:
    """Place a compiled artifact beside an MLflow model folder (``<model_dir>/compiled``)."""
    if folder is None or not (folder / compiled.META_FILE).is_file():
        return
    target = model_dir / compiled.COMPILED_DIR
    if target.exists():
        raise ModelError(f"{target} already exists")
    shutil.copytree(folder, target)
