"""The three pipeline jobs as plain functions over their SageMaker contract paths.

``sagemaker_jobs/<job>/entry.py`` reads the environment and arguments into typed
values and calls these; the local workflow (``rankops train``, the demo) and the local
pipeline runner call them directly with a contract laid out under ``RANKOPS_HOME``.
None of them reads ``os.environ``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from rankops import __version__

CODE_VERSION_ENV = "RANKOPS_CODE_VERSION"


def code_version(environ: Mapping[str, str]) -> str:
    """The code a job runs: ``$RANKOPS_CODE_VERSION`` (set when the image is built), else the
    git commit of the checkout rankops is imported from, else the package version."""
    if environ.get(CODE_VERSION_ENV):
        return environ[CODE_VERSION_ENV]
    try:
        command = ["git", "rev-parse", "--short", "HEAD"]  # git from PATH is intended
        sha = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, check=True, timeout=5, cwd=Path(__file__).resolve().parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return sha or f"rankops-{__version__}"
