"""``serve``: the SageMaker inference container contract, also ``rankops serve``.

SageMaker starts the container with the argument ``serve`` and expects HTTP on
port 8080 (``SAGEMAKER_BIND_TO_PORT`` may change it); the model is extracted to
``/opt/ml/model``. Locally the model comes from the MLflow registry alias.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rankops.config import Settings, load_settings
from rankops.features.lookup import FeatureLookup
from rankops.serving import model as models
from rankops.serving.core import Ranker
from rankops.serving.http import create_app

SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")


def build_ranker(settings: Settings, model_dir: Path | None = None, alias: str = "champion") -> Ranker:
    model_dir = model_dir or (Path(os.environ["SM_MODEL_DIR"]) if os.environ.get("SM_MODEL_DIR") else None)
    if model_dir is None and (SAGEMAKER_MODEL_DIR / "MLmodel").is_file():
        model_dir = SAGEMAKER_MODEL_DIR
    loaded = models.load_from_dir(model_dir) if model_dir else models.load_from_registry(settings, alias)
    return Ranker(loaded, FeatureLookup.from_settings(settings))


def run(settings: Settings, host: str, port: int, model_dir: Path | None = None) -> None:
    import uvicorn

    ranker = build_ranker(settings, model_dir)
    app = create_app(ranker, settings.serving.max_candidates, settings.serving.max_body_bytes)
    print(f"rankops serving model version {ranker.model.version} on http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> None:
    """Container entrypoint (``serve``): SageMaker passes ``serve`` as the only argument."""
    args = argv if argv is not None else sys.argv[1:]
    if args and args[0] not in ("serve",):
        raise SystemExit(f"unknown container command {args[0]!r}; SageMaker runs this image with 'serve'")
    settings = load_settings()
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    run(settings, "0.0.0.0", port)  # noqa: S104 - inside the container, SageMaker routes to this port
