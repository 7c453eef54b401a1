"""The rankops images: ECR repositories, the CodeBuild project, and the Docker files it builds."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.constructs.feature_compute import IMAGE_CONFIG, PYTHON
from infra.constructs.image_build import SOURCE_INCLUDES
from rankops.training.jobs import code_version
from tests.infra.conftest import ENVS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = ("docker/Dockerfile", "docker/emr.Dockerfile")


@pytest.mark.parametrize("env", ENVS)
def test_repositories_are_immutable_scanned_and_pruned(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    repos = synthesized[env].resources("image", "AWS::ECR::Repository").values()
    assert {r["Properties"]["RepositoryName"] for r in repos} == {f"rankops-{env}", f"rankops-{env}-emr"}
    for repo in repos:
        props = repo["Properties"]
        assert props["ImageTagMutability"] == "IMMUTABLE"
        assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert props["EncryptionConfiguration"]["EncryptionType"] == "KMS"
        rules = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
        # released tags (and the pinned bootstrap tag) never expire: only untagged layers are selected
        assert [r["selection"]["tagStatus"] for r in rules] == ["untagged"]


def test_codebuild_builds_from_the_source_asset_with_docker(synthesized) -> None:  # type: ignore[no-untyped-def]
    synth = synthesized["dev"]
    (project,) = synth.resources("image", "AWS::CodeBuild::Project").values()
    props = project["Properties"]
    assert props["Environment"]["PrivilegedMode"] is True  # Docker daemon
    assert props["Source"]["Type"] == "S3" and props["Source"]["BuildSpec"] == "docker/buildspec.yml"
    assert "EncryptionKey" in props
    variables = {v["Name"]: v["Value"] for v in props["Environment"]["EnvironmentVariables"]}
    assert set(variables) == {
        "REPOSITORY_URI",
        "EMR_REPOSITORY_URI",
        "IMAGE_TAG",
        "EMR_RELEASE_LABEL",
        "ARTIFACTS_BUCKET",
        "CODE_VERSION",
    }
    assert variables["IMAGE_TAG"] == synth.config.image_tag
    assert variables["CODE_VERSION"] == code_version({}), "the commit that was synthesized"
    assert variables["EMR_RELEASE_LABEL"] == synth.config.aws.emr.release_label


def test_emr_serverless_may_pull_the_emr_image(synthesized) -> None:  # type: ignore[no-untyped-def]
    repos = synthesized["dev"].resources("image", "AWS::ECR::Repository")
    (emr,) = [r for r in repos.values() if r["Properties"]["RepositoryName"].endswith("-emr")]
    (statement,) = emr["Properties"]["RepositoryPolicyText"]["Statement"]
    assert statement["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
    assert "/applications/*" in json.dumps(statement["Condition"])


def copied_paths(dockerfile: str) -> set[str]:
    paths = set()
    for line in (REPO / dockerfile).read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _destination = line.split()[1:]
            paths |= {s.rstrip("/").split("/")[0] for s in sources}
    return paths


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_everything_a_dockerfile_copies_is_in_the_build_source(dockerfile: str) -> None:
    copied = copied_paths(dockerfile)
    assert copied
    assert copied <= set(SOURCE_INCLUDES), f"{dockerfile} copies {sorted(copied - set(SOURCE_INCLUDES))}"
    assert all((REPO / path).exists() for path in copied)


def test_the_image_follows_the_sagemaker_contract() -> None:
    text = (REPO / "docker/Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=\S*python:3\.11-slim", text)
    assert 'pip install -c constraints.txt ".[serve,train,spark]"' in text
    assert "openjdk-17-jre-headless" in text and "hadoop-aws" in text, "Spark local[*] with s3a:// in processing"
    assert "EXPOSE 8080" in text
    assert "RANKOPS_CONFIG=/opt/program/rankops.toml" in text
    emr = (REPO / "docker/emr.Dockerfile").read_text()
    assert "FROM public.ecr.aws/emr-serverless/spark/${EMR_RELEASE_LABEL}" in emr
    assert "USER hadoop:hadoop" in emr.splitlines()[-1]
    # what the EMR application's spark-defaults point at must be where the image puts it
    assert (
        f"ENV RANKOPS_CONFIG={IMAGE_CONFIG}" in emr and "COPY setup.py README.md constraints.txt rankops.toml ./" in emr
    )
    assert f"{Path(PYTHON).name} -m pip install" in emr and "dnf install -y python3.11" in emr


def test_the_serving_image_runs_as_a_non_root_user() -> None:
    """The last USER before the entrypoint is an unprivileged numeric uid and group (numeric, so
    Kubernetes-style runAsNonRoot checks can verify it without reading /etc/passwd)."""
    lines = (REPO / "docker/Dockerfile").read_text().splitlines()
    users = [i for i, line in enumerate(lines) if line.startswith("USER ")]
    assert users, "no USER: the container would run as root"
    uid, _, gid = lines[users[-1]].split()[1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    entry = next(i for i, line in enumerate(lines) if line.startswith("ENTRYPOINT "))
    assert users[-1] < entry and not any(line.startswith("RUN ") for line in lines[users[-1] : entry])
    created = "\n".join(lines[: users[-1]])
    assert f"--uid {uid}" in created and f"--gid {gid}" in created, "the user exists in the image"


def test_entrypoint_dispatches_like_sagemaker_expects(tmp_path: Path) -> None:
    """`serve` and `train` map to our commands; anything else runs as given (checked with stubs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("serve", "train"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*"\n')
        stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    script = str(REPO / "docker/entrypoint.sh")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", script, *args], capture_output=True, text=True, env=env, check=False)

    assert run("serve").stdout.strip() == "serve"
    assert run("train", "--x").stdout.strip() == "train --x"
    assert run("echo", "hello").stdout.strip() == "hello"
    assert run().returncode == 2


def test_buildspec_pushes_both_images_and_publishes_the_job_script() -> None:
    spec = yaml.safe_load((REPO / "docker/buildspec.yml").read_text())
    assert spec["version"] == 0.2
    commands = [c for phase in spec["phases"].values() for c in phase["commands"]]
    assert all(phase.get("on-failure") == "ABORT" for phase in spec["phases"].values())
    text = "\n".join(commands)
    for dockerfile in DOCKERFILES:
        assert f"-f {dockerfile}" in text
    assert 'docker push "$REPOSITORY_URI:$IMAGE_TAG"' in text
    assert 'docker push "$EMR_REPOSITORY_URI:$IMAGE_TAG"' in text
    # every EMR entry point the templates name (feature, streaming and monitoring jobs) is uploaded
    (upload,) = [c for c in commands if "s3://$ARTIFACTS_BUCKET/emr/$IMAGE_TAG/$job.py" in c]
    jobs = re.search(r"for job in ([a-z_ ]+); do", upload)
    assert jobs and set(jobs.group(1).split()) == {p.stem for p in (REPO / "emr_jobs").glob("*.py")} - {"__init__"}


def test_base_images_are_pinned_by_digest_and_jars_by_checksum() -> None:
    """The Dockerfiles take digests and checksums from docker/pins.env and refuse anything else."""
    pins = dict(
        line.split("=", 1) for line in (REPO / "docker/pins.env").read_text().splitlines() if line and line[0] != "#"
    )
    for dockerfile in DOCKERFILES:
        froms = [line for line in (REPO / dockerfile).read_text().splitlines() if line.startswith("FROM ")]
        assert froms and all(re.search(r"@\$\{\w+_DIGEST\}$", line) for line in froms), froms
    text = (REPO / "docker/Dockerfile").read_text()
    assert text.count("curl -fsSL") == 2 and "sha256sum --strict -c" in text
    build = "\n".join(yaml.safe_load((REPO / "docker/buildspec.yml").read_text())["phases"]["pre_build"]["commands"])
    checked = re.search(r"for pin in ([A-Z0-9_ ]+); do", build)
    assert checked and set(checked.group(1).split()) == {k for k in pins if k.endswith(("_DIGEST", "_SHA256"))}
