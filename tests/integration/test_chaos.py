"""The chaos suite at a small size (``make chaos`` runs it at full size): every scenario runs
and every figure meets its bound (counts, never seconds; see benchmarks/chaos.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_chaos_suite_meets_its_bounds_at_a_small_size() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RANKOPS_")}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos", "--quick"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    rows = {r["scenario"]: r for r in report["scenarios"]}
    assert result.returncode == 0 and report["all_bounds_met"], result.stderr[-3000:]
    assert set(rows) == {
        "kill -9 of a serving worker (2 workers)",
        "normal",
        "redis stopped",
        "redis restarted",
        "redis frozen",
        "redis resumed",
        "DynamoDB throttling (every 3rd read)",
        "kill -9 in a lake commit",
        "kill -9 in a materialization (embedded)",
        "kill -9 in a materialization (redis)",
    }
    # the figures are real: load ran in every serving scenario, and each crash happened
    assert all(r["requests"] > 0 for r in report["scenarios"] if "requests" in r)
    assert rows["kill -9 of a serving worker (2 workers)"]["worker_replaced"]
    assert rows["redis stopped"]["answered_by"].get("fallback", 0) > 0
    assert rows["DynamoDB throttling (every 3rd read)"]["throttled_reads"] > 0
    assert all(r["crashes"] == 2 and r["partial_reads"] == 0 for r in report["scenarios"] if "crashes" in r)
