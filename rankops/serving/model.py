"""A loaded ranking model: the booster, the columns it expects, and who it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rankops import registry
from rankops.errors import ModelError
from rankops.features import registry as features

if TYPE_CHECKING:
    import lightgbm as lgb

    from rankops.config import Settings


@dataclass(frozen=True)
class LoadedModel:
    booster: lgb.Booster
    version: str
    variant: str
    feature_names: list[str]

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(matrix, num_threads=1))


def _checked(booster: lgb.Booster, version: str, variant: str) -> LoadedModel:
    names = list(booster.feature_name())
    known = set(features.model_features()) | {f.name for f in features.FEATURES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ModelError(f"model version {version} expects features {unknown} that the registry does not declare")
    return LoadedModel(booster, version, variant, names)


def load_from_registry(settings: Settings, alias: str = registry.CHAMPION) -> LoadedModel:
    booster, version = registry.load_booster(settings, alias)
    return _checked(booster, version, alias)


def load_from_dir(path: Path, variant: str = registry.CHAMPION) -> LoadedModel:
    """An MLflow model directory, as SageMaker extracts it to ``/opt/ml/model``."""
    import mlflow

    if not (path / "MLmodel").is_file():
        raise ModelError(f"{path} is not an MLflow model directory (no MLmodel file)")
    booster = mlflow.lightgbm.load_model(str(path))
    version = (path / "VERSION").read_text().strip() if (path / "VERSION").is_file() else path.name
    return _checked(booster, version, variant)
