"""The code_version lineage tag: the image's build argument, else the git commit (with -dirty), else the package."""

import subprocess
from pathlib import Path

import pytest
import yaml

from rankops import __version__
from rankops.training.jobs import CODE_VERSION_ENV, clean_code_version, code_version

REPO = Path(__file__).resolve().parents[2]


def git(checkout: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=checkout, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('v1')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


def test_the_image_build_argument_comes_first(checkout: Path) -> None:
    assert code_version({CODE_VERSION_ENV: "0123abc"}, checkout) == "0123abc"
    sha = git(checkout, "rev-parse", "--short", "HEAD")
    assert code_version({CODE_VERSION_ENV: ""}, checkout) == sha
    assert code_version({CODE_VERSION_ENV: "unknown"}, checkout) == sha, "the Dockerfile's default is no version"


def test_a_checkout_gives_its_commit_and_says_when_it_is_dirty(checkout: Path) -> None:
    sha = git(checkout, "rev-parse", "--short", "HEAD")
    assert code_version({}, checkout) == sha
    (checkout / "train.py").write_text("print('v2')\n")  # uncommitted change to tracked code
    assert code_version({}, checkout) == f"{sha}-dirty"
    assert clean_code_version(code_version({}, checkout)) == sha
    git(checkout, "commit", "-q", "-am", "v2")
    assert code_version({}, checkout) == git(checkout, "rev-parse", "--short", "HEAD") != sha


def test_without_git_it_is_the_package_version(tmp_path: Path) -> None:
    assert code_version({}, tmp_path) == f"rankops-{__version__}"


def test_the_image_carries_the_build_argument_and_codebuild_passes_it() -> None:
    dockerfile = (REPO / "docker/Dockerfile").read_text().splitlines()
    assert "ARG CODE_VERSION=unknown" in dockerfile
    assert "ENV RANKOPS_CODE_VERSION=$CODE_VERSION" in dockerfile
    assert dockerfile.index("ARG CODE_VERSION=unknown") > max(
        i for i, line in enumerate(dockerfile) if line.startswith("RUN pip install")
    ), "declared after the dependency layers, so a new commit does not rebuild them"
    spec = yaml.safe_load((REPO / "docker/buildspec.yml").read_text())
    (build,) = [c for c in spec["phases"]["build"]["commands"] if c.startswith("docker build -f docker/Dockerfile ")]
    assert '--build-arg CODE_VERSION="${CODE_VERSION:-${CODEBUILD_RESOLVED_SOURCE_VERSION:-unknown}}"' in build
    # `set -u` is on in the build: the expansion must not fail when CodeBuild leaves the variable unset
    # (it does for S3 sources); checked with bash itself.
    expansion = build.split("CODE_VERSION=", 1)[1].split()[0]
    for env, expected in (({}, "unknown"), ({"CODEBUILD_RESOLVED_SOURCE_VERSION": "f00d"}, "f00d"),
                          ({"CODE_VERSION": "beef", "CODEBUILD_RESOLVED_SOURCE_VERSION": "f00d"}, "beef")):  # fmt: skip
        shell = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; echo {expansion}"], env=env, capture_output=True, text=True, check=True
        )
        assert shell.stdout.strip() == expected
