"""mypy follows only the aws_cdk modules listed in pyproject.toml (the rest are skipped to keep a
cold `make lint` fast): every aws_cdk module the type-checked code names must be in that list, or
its uses would silently become ``Any``."""

from __future__ import annotations

import ast
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
DOTTED = re.compile(r"\b(?:aws_cdk|cdk)\.(\w+)")  # `cdk.aws_s3.Bucket` through the top-level module


def _config() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]


def _followed() -> set[str]:
    followed = [o for o in _config()["overrides"] if o.get("follow_imports") == "normal"]
    return {m for o in followed for m in o["module"]}


def _named_modules(text: str, submodules: set[str]) -> set[str]:
    """``from aws_cdk import aws_s3``, ``import aws_cdk.aws_s3``, ``from aws_cdk.aws_s3 import X``, ``cdk.aws_s3``."""
    names = set(DOTTED.findall(text))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module == "aws_cdk":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aws_cdk."):
            names.add((node.module or "").split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("aws_cdk.")}
    return {f"aws_cdk.{n}" for n in names if n in submodules}


def _checked_files() -> list[Path]:
    out: list[Path] = []
    for entry in _config()["files"]:
        path = REPO / entry
        out.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return out


def test_every_aws_cdk_module_the_checked_code_names_is_followed() -> None:
    import aws_cdk

    submodules = {m.name for m in pkgutil.iter_modules(aws_cdk.__path__)}
    used: dict[str, str] = {}
    for path in _checked_files():
        text = path.read_text()
        if "aws_cdk" in text:
            used.update(dict.fromkeys(_named_modules(text, submodules), str(path.relative_to(REPO))))
    assert "aws_cdk.aws_s3" in used, "the scan finds the CDK modules infra/ uses"
    missing = {m: f for m, f in used.items() if m not in _followed()}
    assert not missing, f"add to pyproject.toml's followed aws_cdk modules: {missing}"


def test_the_scan_reads_every_import_form() -> None:
    submodules = {"aws_s3", "aws_iam", "aws_sqs", "aws_kms", "aws_sns"}
    text = (
        "from aws_cdk import (\n    Stack,\n    aws_s3 as s3,\n    aws_iam,\n)\n"
        "import aws_cdk.aws_sqs as sqs\nfrom aws_cdk.aws_kms import Key\nx = cdk.aws_sns.Topic\n"
    )
    assert _named_modules(text, submodules) == {f"aws_cdk.{n}" for n in submodules}
