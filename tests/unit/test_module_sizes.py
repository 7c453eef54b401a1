"""The house rules on size: no module over 400 lines (split it by job), no entrypoint over 80
(a Lambda handler, a job entry, the CDK app and ``__main__`` modules stay thin: logic lives in
``rankops/`` as plain functions). Each failure names the file and its line count."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE_LIMIT, ENTRY_LIMIT = 400, 80
PACKAGES = ("rankops", "infra", "lambdas", "emr_jobs", "sagemaker_jobs", "stepfunctions")
ENTRY_GLOBS = ("lambdas/*/*.py", "emr_jobs/*.py", "sagemaker_jobs/*/*.py", "app.py", "rankops/**/__main__.py")
SKIP = {"cdk.out", "node_modules", "__pycache__"}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def modules() -> list[Path]:
    return [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) if not SKIP.intersection(p.parts)]


def entrypoints() -> list[Path]:
    found = {p for g in ENTRY_GLOBS for p in ROOT.glob(g) if p.name != "__init__.py"}
    return sorted(p for p in found if not SKIP.intersection(p.parts))


def test_the_globs_find_the_entrypoints() -> None:
    """Not vacuous: every Lambda handler, EMR job, SageMaker entry and the CDK app is counted."""
    rel = {p.relative_to(ROOT).as_posix() for p in entrypoints()}
    assert {"app.py", "emr_jobs/build_features.py", "sagemaker_jobs/training/entry.py"} <= rel
    assert len([r for r in rel if r.startswith("lambdas/")]) == len(list(ROOT.glob("lambdas/*/handler.py"))) >= 6
    assert len(modules()) > 100


@pytest.mark.parametrize(("kind", "limit"), [("module", MODULE_LIMIT), ("entrypoint", ENTRY_LIMIT)])
def test_no_file_over_its_limit(kind: str, limit: int) -> None:
    files = modules() if kind == "module" else entrypoints()
    over = [f"{p.relative_to(ROOT)}: {n} lines" for p in files if (n := _lines(p)) > limit]
    assert not over, f"{kind}s over {limit} lines (split them; logic goes to rankops/):\n" + "\n".join(over)
