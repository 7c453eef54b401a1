"""cdk-nag (AwsSolutions) and cfn-lint over every synthesized environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import ENVS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("env", ENVS)
def test_cdk_nag_reports_nothing_unacknowledged(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    report = synthesized[env].report()
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin["violations"]
        assert plugin["violations"] == []
    acknowledged = [v for p in report["pluginReports"] for v in p.get("suppressedViolations", [])]
    assert all(len(v.get("reason", "")) >= 20 for v in acknowledged), "every acknowledgment has a written reason"


def test_cdk_nag_is_really_checking(tmp_path: Path) -> None:
    """The same plugin set-up fails synthesis on a non-compliant bucket."""
    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Bad"), "Open")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


@pytest.mark.parametrize("env", ENVS)
def test_cfn_lint_is_clean(synthesized, env: str) -> None:  # type: ignore[no-untyped-def]
    templates = sorted(str(p) for p in synthesized[env].outdir.glob("*.template.json"))
    assert templates
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "--", *templates], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pinned_cdk_cli_synthesizes_offline(tmp_path: Path) -> None:
    """`npx cdk synth -c env=dev` with the CLI pinned in package.json (make test runs npm ci)."""
    cli = REPO / "node_modules" / ".bin" / "cdk"
    if not cli.exists():
        pytest.fail("node_modules/.bin/cdk is missing: run `make test` (it runs npm ci) or `npm ci`")
    env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20,22"}
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
    assert (tmp_path / "out" / "rankops-dev-data-lake.template.json").is_file()
