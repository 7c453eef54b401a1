"""A loaded ranking model: the booster, the columns it expects, and who it is.

Models are loaded once (at start-up, or by the release watcher off the request
path) and shared read-only by every request; ``predict`` is the hot path: the model's
verified compiled trees when it has them, LightGBM otherwise (docs/scoring.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rankops import ranker_model, registry
from rankops.errors import ModelError
from rankops.features import registry as features
from rankops.scoring import artifacts

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config import Settings
    from rankops.scoring.scorer import Scorer

FALLBACK_DIR = "fallback"  # a fallback model packaged beside the champion in a SageMaker model archive


@dataclass(frozen=True)
class LoadedModel:
    booster: lgb.Booster
    version: str
    variant: str
    feature_names: list[str]
    threads: int = 1
    scorer: Scorer | None = None  # None: LightGBM's predict

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if self.scorer is not None:
            return self.scorer.predict(matrix)
        return np.asarray(self.booster.predict(matrix, num_threads=self.threads))

    @property
    def engine(self) -> str:
        return self.scorer.engine if self.scorer is not None else "lightgbm"

    def as_role(self, variant: str) -> LoadedModel:
        """The same booster under another role (a promotion reuses the loaded model: no reload)."""
        return LoadedModel(self.booster, self.version, variant, self.feature_names, self.threads, self.scorer)


def _checked(
    booster: lgb.Booster, version: str, variant: str, threads: int = 1, scorer: Scorer | None = None
) -> LoadedModel:
    names = list(booster.feature_name())
    known = set(features.model_features()) | {f.name for f in features.FEATURES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ModelError(f"model version {version} expects features {unknown} that the registry does not declare")
    return LoadedModel(booster, version, variant, names, threads, scorer)


def load_from_registry(settings: Settings, alias: str = registry.CHAMPION) -> LoadedModel:
    booster, version = registry.load_booster(settings, alias)
    threads = settings.serving.predict_threads
    scorer = artifacts.scorer_for_version(settings, booster, settings.mlflow.model_name, version, threads)
    return _checked(booster, version, alias, threads, scorer)


def load_version(settings: Settings, version: str, variant: str, name: str | None = None) -> LoadedModel:
    """One registered version of ``name`` (default: the ranker), whatever aliases it holds."""
    name = name or settings.mlflow.model_name
    try:
        booster = registry.load_version_booster(settings, version, name)
    except ModelError as err:
        raise ModelError(f"cannot load version {version} of model {name!r}: {err}") from err
    threads = settings.serving.predict_threads
    return _checked(
        booster, version, variant, threads, artifacts.scorer_for_version(settings, booster, name, version, threads)
    )


def load_fallback(settings: Settings) -> LoadedModel | None:
    """The small fallback model's champion, or ``None`` if none is registered."""
    name = registry.fallback_model_name(settings)
    version = registry.alias_version(settings, registry.CHAMPION, name)
    return None if version is None else load_version(settings, version, "fallback", name)


def load_from_dir(path: Path, variant: str = registry.CHAMPION, threads: int = 1) -> LoadedModel:
    """An MLflow model directory, as SageMaker extracts it to ``/opt/ml/model``."""
    booster = ranker_model.load_model(path)
    version = (path / "VERSION").read_text().strip() if (path / "VERSION").is_file() else path.name
    return _checked(booster, version, variant, threads, artifacts.scorer_for_dir(booster, path, threads))


def load_fallback_from_dir(path: Path, threads: int = 1) -> LoadedModel | None:
    """``<model dir>/fallback`` if the archive carries one."""
    folder = path / FALLBACK_DIR
    return load_from_dir(folder, "fallback", threads) if (folder / "MLmodel").is_file() else None
