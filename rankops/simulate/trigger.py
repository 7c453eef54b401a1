"""The retrain trigger's real rules (:mod:`rankops.pipeline.retrain`) against a local ledger.

In AWS the trigger asks Step Functions which executions ran and starts one by name; here a JSON
ledger (``RANKOPS_HOME/simulate/executions.json``) answers the same two calls with the same
contract (newest first, ``ExecutionAlreadyExists`` for a taken name), so the cooldown and the
single-flight name are the ones the Lambda applies, not a copy. A started execution is ``RUNNING``
until the simulator's pipeline run for it ends (:meth:`Ledger.finish`), so a drift while it runs
is held as "an execution is running", as Step Functions would answer.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rankops.pipeline import retrain


class ExecutionAlreadyExists(Exception):
    """A second execution with a name already taken (as Step Functions refuses it)."""


class _Exceptions:
    ExecutionAlreadyExists = ExecutionAlreadyExists


class Ledger:
    """The two Step Functions calls the trigger makes, kept in a file."""

    exceptions = _Exceptions

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Read on every call: another ledger on the same file may have started one since."""
        rows: list[dict[str, Any]] = json.loads(self.path.read_text()) if self.path.exists() else []
        return rows

    def list_executions(self, stateMachineArn: str, maxResults: int) -> dict[str, Any]:
        rows = sorted(self.rows, key=lambda r: r["startDate"], reverse=True)[:maxResults]
        return {"executions": [{**r, "startDate": datetime.fromisoformat(r["startDate"])} for r in rows]}

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        rows = self.rows
        if any(r["name"] == name for r in rows):
            raise ExecutionAlreadyExists(name)
        started = json.loads(input)["trigger"]["requested_at"].replace("Z", "+00:00")
        rows.append({"name": name, "status": "RUNNING", "startDate": started})
        self._write(rows)
        return {"executionArn": f"local:{name}"}

    def finish(self, name: str, status: str) -> None:
        """The execution ``name`` ended with ``status`` (``SUCCEEDED``, ``FAILED``, ...)."""
        rows = self.rows
        if not any(r["name"] == name for r in rows):
            raise KeyError(f"no execution {name!r} in the ledger {self.path}")
        self._write([{**r, "status": status} if r["name"] == name else r for r in rows])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows, indent=2))
        tmp.replace(self.path)  # atomic: a crash leaves the old ledger or the new one


def on_drift(ledger: Ledger, at: datetime, reason: str, cooldown: timedelta) -> dict[str, Any]:
    """What the trigger does when the drift alarm is in ALARM at ``at`` (started or why not)."""
    request = retrain.RetrainRequest("drift", reason[:500], "simulate", f"sim-{at:%Y%m%dT%H%M}",
                                     at.strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip
    return retrain.trigger(request, ledger, None, "local:retrain", "local:approvals", cooldown)
