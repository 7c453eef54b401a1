"""A rehearsal stopped by SIGTERM (a CI timeout, ``kill``) stops what it started: the moto server,
redis-server and every serve process, instead of orphaning them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import prod_templates  # noqa: F401 - the synthesized prod templates

pytestmark = pytest.mark.integration


def test_sigterm_during_staging_exits_143_and_leaves_no_child_running(prod_templates: Path, tmp_path: Path) -> None:  # noqa: F811
    cmd = [sys.executable, "-m", "rankops.cli", "--home", str(tmp_path / "home"), "--env", "prod", "rehearse",
           "--scenario", "first-release", "--cdk-out", str(prod_templates), "--events", "2000",
           "--workdir", str(tmp_path / "work")]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the world (moto server, redis-server) is up once staging begins
        seen.append(line)
        if "] stage:" in line:  # "[  11.6s] stage: ..."
            break
    else:
        pytest.fail(f"the rehearsal ended before staging: {''.join(seen)[-2000:]}")
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "the world runs in child processes (moto server, redis-server)"
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(seen) + rest
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [(p.pid, p.name()) for p in alive]
