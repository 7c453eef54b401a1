"""The ranker model type: a LightGBM booster stored as an MLflow model directory.

One module, symmetric like an MLflow flavor: :func:`save_model` (a local directory, e.g.
``SM_MODEL_DIR``), :func:`log_model` (an artifact of the active run) and :func:`load_model`
(any MLflow model URI or local directory). Every stored ranker is written by MLflow's
``lightgbm`` flavor, so any MLflow tool can read it; it is read back here from its model
text file (``model.lgb``) only. ``mlflow.lightgbm.load_model`` would unpickle the data file
when ``MLmodel`` names a class other than ``Booster``: a model directory is input from a bucket
or a registry, and loading it must never execute code.
"""

from __future__ import annotations

import tempfile
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from rankops import integrity
from rankops.errors import ModelError

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd

FLAVOR = "lightgbm"
BOOSTER_CLASS = "lightgbm.basic.Booster"
MLMODEL = "MLmodel"


def pip_requirements() -> list[str]:
    """Explicit requirements: MLflow's environment inference costs seconds per model."""
    return [
        f"lightgbm=={dist_version('lightgbm')}",
        f"numpy=={dist_version('numpy')}",
        f"pandas=={dist_version('pandas')}",
    ]


def signature(booster: lgb.Booster, input_example: pd.DataFrame) -> Any:
    """The model signature: the example's columns in, one float score per row out."""
    from mlflow.models import infer_signature

    return infer_signature(input_example, np.asarray(booster.predict(input_example.to_numpy(np.float64))))


def _flavor_options(booster: lgb.Booster, input_example: pd.DataFrame) -> dict[str, Any]:
    return {
        "signature": signature(booster, input_example),
        "input_example": input_example,
        "pip_requirements": pip_requirements(),
    }


def save_model(booster: lgb.Booster, path: str | Path, input_example: pd.DataFrame) -> None:
    """Write the MLflow model directory at ``path`` (which must not exist or be empty)."""
    import mlflow

    mlflow.lightgbm.save_model(booster, str(path), **_flavor_options(booster, input_example))


def log_model(booster: lgb.Booster, input_example: pd.DataFrame, name: str = "model") -> str:
    """Log the model as artifact ``name`` of the active MLflow run; returns its model URI
    (what :func:`rankops.registry.register` takes)."""
    import mlflow

    return str(mlflow.lightgbm.log_model(booster, name=name, **_flavor_options(booster, input_example)).model_uri)


def booster_file(folder: Path) -> Path:
    """The model text file an MLflow ``lightgbm`` directory names, refusing anything else.

    ``MLmodel`` is YAML; it is read with PyYAML's ``safe_load`` (as MLflow's ``Model.load`` reads it)
    rather than through MLflow, so that a serving container's start-up never imports MLflow: that
    import alone costs 2.5-3 s of CPU on a 2.0 GHz core, paid on every scale-out and every
    blue/green fleet (docs/serving.md, "Start-up")."""
    import yaml

    mlmodel = folder / MLMODEL
    if not mlmodel.is_file():
        raise ModelError(f"{folder} is not an MLflow model directory (no {MLMODEL} file)")
    try:
        document = yaml.safe_load(mlmodel.read_text())
        flavors = document.get("flavors") if isinstance(document, dict) else None
        if not isinstance(flavors, dict):
            raise ValueError("it has no 'flavors' mapping")
    except Exception as err:
        raise ModelError(f"{mlmodel} is not a readable MLmodel file: {err}") from None
    flavor = flavors.get(FLAVOR)
    if not isinstance(flavor, dict):
        raise ModelError(f"{folder} holds no LightGBM model (no {FLAVOR!r} flavor in {MLMODEL})")
    if flavor.get("model_class", BOOSTER_CLASS) != BOOSTER_CLASS:
        raise ModelError(
            f"{folder} holds a {flavor['model_class']} (a pickle); a ranker is a LightGBM Booster saved as text"
        )
    data = folder / str(flavor.get("data", ""))
    if not data.is_file() or data.resolve().parent != folder.resolve():
        raise ModelError(f"{folder}: the model file {flavor.get('data')!r} named in {MLMODEL} is missing")
    return data


def _booster(path: Path, expected_sha256: str | None = None, label: str = "") -> lgb.Booster:
    """The booster read once from its file: the bytes checked against the gate's digest (when
    given) are the bytes parsed."""
    import lightgbm as lgb

    data = booster_file(path).read_bytes()
    if expected_sha256:
        integrity.verify_bytes(data, expected_sha256, label or str(path))
    try:
        return lgb.Booster(model_str=data.decode())
    except (lgb.basic.LightGBMError, UnicodeDecodeError) as err:
        raise ModelError(f"{path}: not a LightGBM model text file: {err}") from None


def load_model(model_uri: str | Path, expected_sha256: str | None = None) -> lgb.Booster:
    """The booster at a local model directory or any MLflow model URI (``models:/name/7``,
    ``runs:/...``, ``s3://...``); remote ones are downloaded to a temporary folder first.
    ``expected_sha256`` (the gate's ``gate.sha256`` tag): the model file must have it, else
    :class:`rankops.integrity.IntegrityError`. Every failure is a :class:`ModelError` naming the model.
    A local directory is read without importing MLflow (see :func:`booster_file`)."""
    local = Path(model_uri)
    if local.is_dir() or not urlparse(str(model_uri)).scheme:
        return _booster(local, expected_sha256)
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="rankops-model-") as scratch:
        try:
            folder = mlflow.artifacts.download_artifacts(artifact_uri=str(model_uri), dst_path=scratch)
        except (MlflowException, OSError) as err:
            raise ModelError(f"cannot download model {model_uri}: {err}") from err
        return _booster(Path(folder), expected_sha256, str(model_uri))
