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
DIRTY_SUFFIX = "-dirty"
UNKNOWN = "unknown"  # the image's default when its build had no version to pass: same as unset
_PACKAGE_DIR = Path(__file__).resolve().parent


def _git(args: list[str], checkout: Path) -> str:
    """``git <args>`` in ``checkout``; '' when git or the repository is absent."""
    command = ["git", *args]  # git from PATH is intended
    try:
        return subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, check=True, timeout=5, cwd=checkout
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_version(environ: Mapping[str, str], checkout: Path | None = None) -> str:
    """The code a job runs, first of:

    1. ``$RANKOPS_CODE_VERSION``: set when the image is built (``docker/Dockerfile``'s
       ``CODE_VERSION`` build argument); ``unknown`` counts as unset;
    2. the git commit of the checkout rankops is imported from (``checkout``: another folder,
       for tests), with ``-dirty`` appended when its working tree has uncommitted changes;
    3. ``rankops-<package version>``.
    """
    given = environ.get(CODE_VERSION_ENV, "")
    if given and given != UNKNOWN:
        return given
    where = checkout or _PACKAGE_DIR
    sha = _git(["rev-parse", "--short", "HEAD"], where)
    if not sha:
        return f"rankops-{__version__}"
    return sha + DIRTY_SUFFIX if _git(["status", "--porcelain"], where) else sha


def clean_code_version(version: str) -> str:
    """``version`` without the ``-dirty`` marker: what identifies the code in the idempotency key
    (two identical runs from the same dirty checkout must still be the same training)."""
    return version.removesuffix(DIRTY_SUFFIX)
