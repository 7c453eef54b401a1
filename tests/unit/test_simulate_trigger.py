"""The simulator's retrain trigger is the Lambda's rules against a ledger file: one drift run per
cooldown, and a name taken in a trigger window is refused even when the checks raced past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rankops.simulate.trigger import Ledger, on_drift

DAY = timedelta(hours=24)
T0 = datetime(2026, 11, 5, 12, tzinfo=UTC)


def test_one_drift_run_per_cooldown(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "executions.json")
    first = on_drift(ledger, T0, "drift: PSI 3 > 0.2 on query_category", DAY)
    running = on_drift(ledger, T0 + timedelta(hours=1), "drift: still", DAY)
    ledger.finish(first["name"], "SUCCEEDED")
    held = on_drift(ledger, T0 + timedelta(hours=12), "drift: still", DAY)
    later = on_drift(ledger, T0 + DAY, "drift: still", DAY)
    assert first["started"] and first["name"] == "auto-20261105T0000"
    assert not running["started"] and running["reason"] == "an execution is running", "single flight while it runs"
    assert not held["started"] and held["reason"] == "cooldown: auto-20261105T0000 started 2026-11-05 12:00 UTC"
    assert later["started"] and later["name"] == "auto-20261106T0000"
    assert [r["name"] for r in Ledger(tmp_path / "executions.json").rows] == [first["name"], later["name"]]


class ReadBeforeTheOtherStarted(Ledger):
    """A trigger whose check ran before a concurrent one started its execution."""

    def list_executions(self, stateMachineArn: str, maxResults: int) -> dict:
        return {"executions": []}


def test_a_second_trigger_that_raced_past_the_checks_starts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "executions.json"
    assert on_drift(Ledger(path), T0, "drift", DAY)["started"]
    raced = on_drift(ReadBeforeTheOtherStarted(path), T0 + timedelta(minutes=5), "drift", DAY)
    assert raced == {"trigger": "drift", "started": False, "name": "auto-20261105T0000",
                     "reason": "auto-20261105T0000 already ran in this trigger window"}  # fmt: skip
    assert len(Ledger(path).rows) == 1
