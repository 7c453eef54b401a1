"""What a scenario checks of a finished execution: its status and path, a state's output, the
version it released, and that the endpoint, the registry and the lineage agree afterwards.

Shared by every scenario module (:mod:`rankops.rehearse.scenarios` registers them), so each check
and each failure message is written once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from rankops.pipeline.runner import ExecutionRecord, StateRecord
from rankops.rehearse import agreement as agree
from rankops.rehearse.outcome import ScenarioFailed
from rankops.rehearse.session import Rehearsal


def visited(record: ExecutionRecord) -> list[str]:
    return [s.name for s in record.states]


def last_state(record: ExecutionRecord) -> str:
    failed = [s for s in record.states if s.status == "failed" or s.error]
    return (failed or record.states or [StateRecord("(none)", "", 0.0)])[-1].name


def verdicts(record: ExecutionRecord, limit: int = 600) -> str:
    """What turned the execution: every judgement in the last state's output that said no (a
    check's ``ok: false``, a gate's ``promote: false``, a ``rollback``/``stop`` action) with its
    reasons; empty when none did. Keeps a failure message readable when a CI log is cut short."""
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            said_no = value.get("ok") is False or value.get("promote") is False
            if said_no or value.get("action") in ("rollback", "stop", "hold"):
                found.append(f"{path or '$'}: {'; '.join(map(str, value.get('reasons') or [])) or value.get('action')}")
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    for event in reversed(record.events):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("output"):
            with contextlib.suppress(ValueError):  # an output that is not JSON says nothing here
                walk(json.loads(details["output"]), "")
            break
    return " | ".join(found)[:limit]


def expect(name: str, record: ExecutionRecord, status: str, visits: Sequence[str], skips: Sequence[str] = ()) -> None:
    """The execution ended ``status`` after visiting every state of ``visits`` and none of ``skips``;
    a failure names what turned it (:func:`verdicts`)."""
    seen = visited(record)
    why = verdicts(record)
    why = f"; said no: {why}" if why else ""
    if record.status != status:
        raise ScenarioFailed(
            name,
            last_state(record),
            f"execution {record.status}, expected {status} ({record.error}: {str(record.cause)[:300]}){why}",
        )
    for state in visits:
        if state not in seen:
            path = ", ".join(dict.fromkeys(seen))  # each state once, in first-visit order (polls repeat)
            raise ScenarioFailed(name, last_state(record), f"never reached {state}{why} (visited {path})")
    for state in skips:
        if state in seen:
            raise ScenarioFailed(name, state, f"reached {state}, which this scenario must not")


def output_of(record: ExecutionRecord, state: str) -> dict[str, Any]:
    """The output of the last exit of ``state`` in the execution's history."""
    for event in reversed(record.events):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == state:
            return dict(json.loads(details["output"]))
    raise ScenarioFailed("?", state, f"{state} never finished")


def version(record: ExecutionRecord) -> str:
    """The model version the execution's gate judged (the challenger it released or not)."""
    return str(output_of(record, "Gate")["gate"]["result"]["version"])


def agreement(name: str, r: Rehearsal, champion: str, challenger: str | None = None) -> agree.Agreement:
    """The endpoint, the registry and the lineage agree, on ``champion`` (and ``challenger``)."""
    found = agree.check(r.settings, r.endpoint, r.request(), r.world.client("s3"))
    if not found.agrees or found.champion_alias != champion or found.challenger_alias != challenger:
        rows = "; ".join(f"{k}={v}" for k, v in found.rows())
        raise ScenarioFailed(
            name, "(after the run)", f"expected champion {champion}, challenger {challenger or '-'}: {rows}"
        )
    return found
