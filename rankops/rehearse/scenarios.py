"""The rehearsal's scenarios: each runs the deployed pipeline in AWS mode and checks that it ends
where it must, and that the endpoint, the registry and the lineage then agree.

Scenarios run in order on one rehearsal (a release needs the one before it): ``first-release``
puts the first champion in front of the bootstrap endpoint's traffic; ``bad-challenger`` trains a
challenger whose serving container dies once it is in shadow (the check sees its 5xx and missing
capture), and the pipeline rolls back to the champion and removes the challenger's alias.
``full-release`` and ``alarm-after-promote`` live in :mod:`rankops.rehearse.scenario_release`,
``retrain-trigger`` in :mod:`rankops.rehearse.scenario_trigger` (docs/rehearsal.md lists them all).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rankops.errors import RankopsError
from rankops.pipeline.runner import ExecutionRecord, StateRecord
from rankops.rehearse import agreement as agree
from rankops.rehearse import expect, scenario_release, scenario_trigger
from rankops.rehearse.outcome import OnState, ScenarioFailed, ScenarioResult
from rankops.rehearse.pipeline_run import run_deployed
from rankops.rehearse.session import RELEASE_STATES, Rehearsal, traffic

# the checks every scenario module shares (rankops.rehearse.expect), under this module's old names
_visited, _last_state, _expect, _output_of = expect.visited, expect.last_state, expect.expect, expect.output_of
_version, _agreement = expect.version, expect.agreement


def _run(
    r: Rehearsal, execution_input: dict[str, Any], on_state: OnState | None, approve: bool = True
) -> ExecutionRecord:
    """One pipeline execution with production traffic from its first release state on."""
    with traffic(r) as (_counts, go):

        def watch(record: StateRecord) -> None:
            if record.name in RELEASE_STATES:
                go.set()
            if on_state:
                on_state(record)

        return run_deployed(
            r.world, r.home, execution_input, on_state=watch, approver=lambda _request: approve,
            time_scale=r.emulator.clock.factor,
        )  # fmt: skip


def first_release(r: Rehearsal, on_state: OnState | None = None) -> ScenarioResult:
    name = "first-release"
    record = _run(r, {"reason": f"rehearsal: {name}"}, on_state)
    _expect(name, record, "SUCCEEDED", ["Gate", "Register", "Deploy", "PromoteRegistry", "Released"], ["Shadow"])
    found = _agreement(name, r, _version(record))
    trained = str(_output_of(record, "Training")["training"]["model_data"])
    if found.served_model_data != trained:
        raise ScenarioFailed(name, "Deploy", f"the endpoint serves {found.served_model_data}, not {trained}")
    return ScenarioResult(name, record, found)


SCENARIOS: dict[str, Callable[[Rehearsal, OnState | None], ScenarioResult]] = {
    "first-release": first_release,
    "full-release": scenario_release.full_release,
}


def _kill_challenger_when(r: Rehearsal, state: str, on_state: OnState | None) -> OnState:
    """``on_state``, and when ``state`` starts: the challenger variant's serving process dies (its
    container crashed), so its share of traffic answers 5xx and it captures nothing."""

    def watch(record: StateRecord) -> None:
        if on_state:
            on_state(record)
        if record.name == state and record.status == "running":
            endpoint = r.emulator.endpoints[r.endpoint]
            for fleet in (endpoint.live, endpoint.new):
                server = fleet.servers.get("challenger") if fleet else None
                if server is not None:
                    server.proc.kill()

    return watch


def bad_challenger(r: Rehearsal, on_state: OnState | None = None) -> ScenarioResult:
    name = "bad-challenger"
    before = agree.check(r.settings, r.endpoint, r.request(), r.world.client("s3")).champion_alias
    if before is None:
        raise ScenarioFailed(name, "(before the run)", "needs a champion: run first-release first")
    execution_input = {"reason": f"rehearsal: {name}", "overrides": {"training": {"seed": 7}}}
    record = _run(r, execution_input, _kill_challenger_when(r, "ShadowSoak", on_state))
    _expect(
        name,
        record,
        "FAILED",
        ["Shadow", "ShadowCheck", "ShadowOk?", "ShadowRejected", "Rollback", "RejectRegistry"],
        ["Canary", "Promote"],
    )
    return ScenarioResult(name, record, _agreement(name, r, before), {"challenger": _version(record)})


SCENARIOS["bad-challenger"] = bad_challenger
SCENARIOS["alarm-after-promote"] = scenario_release.alarm_after_promote
SCENARIOS["retrain-trigger"] = scenario_trigger.retrain_trigger


def selected(name: str) -> list[str]:
    """The scenarios ``name`` denotes (``all``: every one, in order); an unknown name is an error."""
    if name == "all":
        return list(SCENARIOS)
    if name not in SCENARIOS:
        raise RankopsError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)} or all")
    return [name]


def run_scenarios(
    env: str, workdir: Any, names: list[str], *, cdk_out: Any = None, events: int = 12_000,
    on_state: OnState | None = None, say: Callable[[str], None] = print,
) -> list[ScenarioResult]:  # fmt: skip
    """Open one rehearsal of ``env`` and run the scenarios ``names`` in order (each one that needs
    an earlier release runs after it); raises :class:`ScenarioFailed` at the first that goes wrong."""
    from rankops.rehearse.session import open_rehearsal

    needed = [n for n in SCENARIOS if n in names or (n == "first-release" and names != ["first-release"])]
    results = []
    with open_rehearsal(env, workdir, cdk_out=cdk_out, events=events, say=say) as rehearsal:
        for name in needed:
            say(f"scenario {name}")
            started = time.monotonic()
            result = SCENARIOS[name](rehearsal, on_state)
            result.seconds = time.monotonic() - started
            results.append(result)
    return results
