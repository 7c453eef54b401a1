"""SageMaker inference entrypoint: the container's ``serve`` program.

SageMaker starts the container with the argument ``serve`` and expects HTTP on port 8080
(``SAGEMAKER_BIND_TO_PORT`` may change it, ``SAGEMAKER_MODEL_SERVER_WORKERS`` sets the worker
count); the model is extracted to ``/opt/ml/model`` (``SM_MODEL_DIR``). The server itself is
assembled in :mod:`rankops.serving.server`. There is no registry fallback here: a container
without its model fails start-up, so a bad deployment never turns healthy (to serve from the
MLflow registry, run ``rankops serve``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from rankops.config import load_settings
from rankops.errors import ModelError
from rankops.serving import server
from rankops.serving.server import run


def container_model_dir() -> Path:
    """The model the container serves (``SM_MODEL_DIR``, else ``/opt/ml/model``)."""
    model_dir = server.model_dir_from_environment(None)
    if model_dir is None:
        raise SystemExit(
            f"serve: no model to serve: {server.SAGEMAKER_MODEL_DIR / 'MLmodel'} does not exist and SM_MODEL_DIR is "
            "not set. SageMaker extracts the Model's ModelDataUrl (model.tar.gz of an MLflow model directory, MLmodel "
            "at its root) there; check the model archive. To serve from the MLflow registry, run `rankops serve`."
        )
    return model_dir


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """SageMaker passes ``serve`` as the only argument."""
    args = argv if argv is not None else sys.argv[1:]
    env = os.environ if environ is None else environ
    if args and args[0] != "serve":
        raise SystemExit(f"unknown container command {args[0]!r}; SageMaker runs this image with 'serve'")
    model_dir = container_model_dir()
    settings = load_settings()
    port = int(env.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    workers = int(env.get("SAGEMAKER_MODEL_SERVER_WORKERS", str(settings.serving.workers)))
    try:
        server.check_gated(model_dir)  # the release step's RANKOPS_MODEL_SHA256: only what the gate judged
    except ModelError as err:
        raise SystemExit(f"serve: {err}") from None
    run(settings, "0.0.0.0", port, model_dir, workers=workers)  # noqa: S104 - inside the container, SageMaker routes here


if __name__ == "__main__":
    main()
