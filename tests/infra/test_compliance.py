"""cdk-nag (AwsSolutions) and cfn-lint over every synthesized environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from infra.nag import MIN_REASON, ReviewedAwsSolutionsChecks, acknowledge, acknowledge_wildcards
from tests.infra.conftest import ENVS, STACKS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("env", ENVS)
def test_cdk_nag_reports_nothing_unacknowledged(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    record = synthesized[env].nag_acknowledged()  # written by the plugin: proof that it ran
    assert record["plugin"] == "AwsSolutions"
    assert record["violations"] == 0
    for plugin in synthesized[env].report()["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin["violations"]
        assert plugin["violations"] == []
    rules = record["acknowledged_rules"]
    assert all(len(r["reason"]) >= MIN_REASON for r in rules), "every acknowledgment has a written reason"
    expected = {"AwsSolutions-S1", "AwsSolutions-SMG4", "AwsSolutions-CB3", "AwsSolutions-L1"}
    expected.add("AwsSolutions-SQS3")  # EventBridge targets' dead-letter queues need no DLQ of their own
    if env != "prod":
        expected.add("AwsSolutions-AEC4")  # single-AZ Redis outside prod, said so in the reason
    assert {r["rule"] for r in rules} == expected
    reviewed = record["acknowledged_wildcards"]
    assert reviewed, "the stacks hold IAM wildcards (lake prefixes, grants); each must have been reviewed"
    assert all(r["rule"].startswith("AwsSolutions-IAM5[") for r in reviewed)
    assert all(len(r["reason"]) >= MIN_REASON for r in reviewed), "every acknowledgment has a written reason"


def test_cdk_nag_is_really_checking(tmp_path: Path) -> None:
    """The same plugin set-up fails synthesis on a non-compliant bucket."""
    app = App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    s3.Bucket(Stack(app, "Bad"), "Open")
    Validations.of(app).add_plugins(ReviewedAwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def _wildcard_app(tmp_path: Path, *patterns: str) -> App:
    app = App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = Stack(app, "Wild")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::some-bucket/logs/*"]))
    if patterns:
        acknowledge_wildcards(role, "objects under logs/ are written by the service with unknown names", *patterns)
    Validations.of(app).add_plugins(ReviewedAwsSolutionsChecks(app))
    return app


def test_wildcard_review_acknowledges_only_matching_findings(tmp_path: Path) -> None:
    _wildcard_app(tmp_path / "ok", r"Resource::arn:aws:s3:::some-bucket/logs/\*").synth()
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _wildcard_app(tmp_path / "other", r"Resource::arn:aws:s3:::some-bucket/other/\*").synth()
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _wildcard_app(tmp_path / "none").synth()


def test_plain_acknowledgments_still_apply_and_need_a_reason(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    bucket = s3.Bucket(Stack(app, "Logs"), "Target", enforce_ssl=True)
    acknowledge(bucket, "AwsSolutions-S1", "This bucket receives access logs; logging it to itself would loop.")
    Validations.of(app).add_plugins(ReviewedAwsSolutionsChecks(app))
    app.synth()
    with pytest.raises(ValueError, match="written reason"):
        acknowledge(bucket, "AwsSolutions-S10", "because")


def test_reviewed_plugin_runs_the_full_aws_solutions_pack() -> None:
    assert ReviewedAwsSolutionsChecks(App()).name == AwsSolutionsChecks(App()).name == "AwsSolutions"


@pytest.mark.parametrize("env", ENVS)
def test_cfn_lint_is_clean(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    templates = sorted(str(p) for p in synthesized[env].outdir.glob("*.template.json"))
    assert len(templates) == len(STACKS)
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "--", *templates], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pinned_cdk_cli_synthesizes_offline(tmp_path: Path) -> None:
    """`npx cdk synth -c env=dev` with the CLI pinned in package.json (make test runs npm ci)."""
    cli = REPO / "node_modules" / ".bin" / "cdk"
    if not cli.exists():
        pytest.fail("node_modules/.bin/cdk is missing: run `make test` (it runs npm ci) or `npm ci`")
    env = {
        **os.environ,
        "CDK_DISABLE_CLI_TELEMETRY": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20,22",
        "CDK_VALIDATION": "false",  # CDK's built-in validator only warns (cfn-lint runs above); saves ~12 s
    }
    result = subprocess.run(
        [
            str(cli),
            "synth",
            "--no-notices",
            "--quiet",
            "-c",
            "env=dev",
            "--app",
            f"{sys.executable} app.py",
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for suffix in STACKS:
        assert (tmp_path / "out" / f"rankops-dev-{suffix}.template.json").is_file()
