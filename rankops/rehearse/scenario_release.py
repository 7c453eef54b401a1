"""The release scenarios that go all the way to a promotion: ``full-release`` and ``alarm-after-promote``.

``full-release``: a new challenger (another training seed) passes the shadow, judged on rank
correlation and score KL from both variants' data capture; prod's approval step is answered (and
shows the shadow's figures); the sticky canary goes 10 -> 50 -> 100 % while the rehearsal's callers
send every request through :class:`rankops.release.routing_document.StickyInvoker` (the routing
document the release Lambda publishes), and no user ever goes back from the challenger to the
champion; the promotion is a guarded blue/green update (the endpoint's alarms watch it); the old
champion keeps the ``previous`` alias.

``alarm-after-promote``: the same path, but the promotion's new fleet crashes as soon as it is up
(an :attr:`Emulator.fleet_started` hook kills its serve processes; nothing sets an alarm by hand):
its answers are 5xx, the emulator publishes them, the template's 5xx alarm evaluates to ALARM on
those metrics during the baking period and the emulator rolls the update back, as SageMaker does.
The pipeline sees the endpoint InService on another config than the one it deployed, goes to
``Rollback`` (the config recorded by ``Baseline``) and ``RejectRegistry``: the champion from before
serves, and the registry and the lineage say so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rankops.pipeline.runner import ExecutionRecord, StateRecord
from rankops.rehearse import agreement as agree
from rankops.rehearse.expect import agreement, expect, output_of, version
from rankops.rehearse.outcome import OnState, ScenarioFailed, ScenarioResult
from rankops.rehearse.pipeline_run import run_deployed
from rankops.rehearse.session import RELEASE_STATES, Rehearsal

CALLER_CACHE_S = 30.0  # how long a caller keeps the routing document (StickyInvoker's default), emulated


@dataclass
class Users:
    """Which model version answered each user, in order (degraded answers name none and are skipped)."""

    versions: dict[str, list[str]] = field(default_factory=dict)
    sent: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, user: str, model_version: str | None) -> None:
        with self.lock:
            self.sent += 1
            if model_version is None:
                return
            seen = self.versions.setdefault(user, [])
            if not seen or seen[-1] != model_version:
                seen.append(model_version)

    def went_back(self, old: str, new: str) -> list[str]:
        """Users answered by ``new`` and later by ``old`` again."""
        with self.lock:
            return sorted(u for u, seen in self.versions.items() if new in seen and old in seen[seen.index(new) :])

    def on(self, model_version: str) -> int:
        with self.lock:
            return sum(model_version in seen for seen in self.versions.values())


def routing_uri(r: Rehearsal) -> str:
    """Where the deployed release Lambda publishes the routing document (its payload in the definition)."""
    states = json.loads(r.world.definition())["States"]
    return str(states["Shadow"]["Parameters"]["Payload"]["routing_uri"])


@contextmanager
def sticky_traffic(r: Rehearsal, threads: int = 2) -> Iterator[tuple[Users, threading.Event]]:
    """Production traffic as a sticky caller sends it: the logged searches (one user each) through
    ``StickyInvoker`` (``TargetVariant`` from the published routing document, re-read after
    ``CALLER_CACHE_S`` emulated seconds), once the returned event is set; records who got which model."""
    import boto3

    from rankops.release.routing_document import StickyInvoker

    users, stop, go = Users(), threading.Event(), threading.Event()
    uri, max_age = routing_uri(r), CALLER_CACHE_S * r.emulator.clock.factor

    def run(offset: int) -> None:
        invoker = StickyInvoker(boto3.client("sagemaker-runtime"), r.endpoint, uri, boto3.client("s3"), max_age)
        i = offset
        while not stop.is_set():
            if not go.wait(0.5):
                continue
            body = json.loads(r.requests[i % len(r.requests)])
            i += threads
            try:
                answer = invoker.invoke(body)
            except Exception:
                with users.lock:
                    users.failed += 1  # a failed request is what the alarms and checks must see
                continue
            users.saw(
                str(body.get("user_id")), None if answer.get("model_version") is None else str(answer["model_version"])
            )

    workers = [threading.Thread(target=run, args=(k,), daemon=True, name=f"sticky-{k}") for k in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield users, go
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)


def _run(
    r: Rehearsal, execution_input: dict[str, Any], on_state: OnState | None, approvals: list[dict[str, Any]]
) -> tuple[ExecutionRecord, Users]:
    """One pipeline execution with sticky production traffic from its first release state on;
    every approval request is kept in ``approvals`` and approved."""
    with sticky_traffic(r) as (users, go):

        def watch(record: StateRecord) -> None:
            if record.name in RELEASE_STATES:
                go.set()
            if on_state:
                on_state(record)

        def approve(request: dict[str, Any]) -> bool:
            approvals.append(request)
            return True

        record = run_deployed(
            r.world, r.home, execution_input, on_state=watch, approver=approve, time_scale=r.emulator.clock.factor
        )
    return record, users


def _champion(name: str, r: Rehearsal) -> agree.Agreement:
    before = agree.check(r.settings, r.endpoint, r.request(), r.world.client("s3"))
    if before.champion_alias is None:
        raise ScenarioFailed(name, "(before the run)", "needs a champion: run first-release first")
    return before


def _released_through_the_canary(name: str, record: ExecutionRecord, approvals: list[dict[str, Any]]) -> dict[str, Any]:
    """The shadow's comparison from data capture, the approval that showed it, the canary's steps."""
    shadow = output_of(record, "ShadowCheck")["shadow"]["result"]
    figures = shadow.get("shadow") or {}
    if figures.get("spearman_mean") is None or figures.get("kl_divergence") is None or not figures.get("requests"):
        raise ScenarioFailed(name, "ShadowCheck", f"no rank correlation and score KL from data capture: {shadow}")
    if not approvals or "shadow" not in json.dumps(approvals[0]):
        raise ScenarioFailed(name, "Approval", f"the approval request did not show the shadow's figures: {approvals}")
    steps = [float(step["share"]) for step in output_of(record, "Canary")["canary"]]
    if steps != [0.1, 0.5, 1.0]:
        raise ScenarioFailed(name, "Canary", f"canary steps {steps}, expected 10 -> 50 -> 100 %")
    return figures


def full_release(r: Rehearsal, on_state: OnState | None = None) -> ScenarioResult:
    name = "full-release"
    before = _champion(name, r)
    old = str(before.champion_alias)
    approvals: list[dict[str, Any]] = []
    execution_input = {"reason": f"rehearsal: {name}", "overrides": {"training": {"seed": 11}}}
    record, users = _run(r, execution_input, on_state, approvals)
    expect(
        name, record, "SUCCEEDED",
        ["Baseline", "Shadow", "ShadowCheck", "Approval", "Canary", "Promote", "PromoteRegistry", "Released"],
        ["Rollback", "ShadowRejected"],
    )  # fmt: skip
    new = version(record)
    figures = _released_through_the_canary(name, record, approvals)
    promoted = output_of(record, "Promote")["release"]["result"]
    deployment = r.emulator.endpoints[r.endpoint].last_deployment or {}
    watched = [a["AlarmName"] for a in deployment.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    if not promoted.get("guardrails") or not watched:
        raise ScenarioFailed(name, "Promote", f"the promotion was not alarm-guarded: {promoted}, {deployment}")
    back = users.went_back(old, new)
    if back or not users.on(new):
        raise ScenarioFailed(
            name,
            "Canary",
            f"{len(back)} users went back from {new} to {old} (e.g. {back[:3]}); {users.on(new)} saw {new}",
        )
    found = agreement(name, r, new)
    from rankops import registry

    previous = registry.aliases(r.settings).get(registry.PREVIOUS)
    if previous != old:
        raise ScenarioFailed(name, "PromoteRegistry", f"previous alias {previous}, expected the old champion {old}")
    notes = {"champion_before": old, "challenger": new, "shadow": figures, "alarms": watched, "previous": previous,
             "went_back": back,
             "users": len(users.versions), "users_on_challenger": users.on(new), "sent": users.sent}  # fmt: skip
    return ScenarioResult(name, record, found, notes)


@contextmanager
def _crash_guarded_fleet(r: Rehearsal, crashed: list[str]) -> Iterator[None]:
    """The new fleet of the next guarded update (an ``UpdateEndpoint`` with a ``DeploymentConfig``:
    in a release after the first, only ``Promote``'s) crashes as soon as it passed its health check,
    before any traffic shifts to it: its serve processes are killed, nothing else is touched."""

    def crash(endpoint: Any, fleet: Any, update: dict[str, Any]) -> None:
        if endpoint.name != r.endpoint or not update.get("DeploymentConfig") or crashed:
            return
        for variant, server in fleet.servers.items():
            server.proc.kill()
            crashed.append(variant)

    r.emulator.fleet_started.append(crash)
    try:
        yield
    finally:
        r.emulator.fleet_started.remove(crash)


def alarm_after_promote(r: Rehearsal, on_state: OnState | None = None) -> ScenarioResult:
    name = "alarm-after-promote"
    before = _champion(name, r)
    old = str(before.champion_alias)
    crashed: list[str] = []
    rollbacks = len(r.emulator.endpoints[r.endpoint].rollbacks)
    # a near copy of full-release's champion (its seed, a slightly smaller learning rate): a new version
    # the gate passes (within max_ndcg_drop_relative) whatever the staged data; another seed may not
    overrides = {"training": {"seed": 11, "params": {"learning_rate": 0.19}}}
    execution_input = {"reason": f"rehearsal: {name}", "overrides": overrides}
    with _crash_guarded_fleet(r, crashed):
        record, _users = _run(r, execution_input, on_state, [])
    expect(
        name, record, "FAILED",
        ["Canary", "Promote", "PromotedFailed", "Rollback", "RolledBackDescribe", "RejectRegistry"],
        ["PromoteRegistry", "Released"],
    )  # fmt: skip
    if not crashed:
        raise ScenarioFailed(name, "Promote", "the promotion started no guarded (alarm-watched) fleet to crash")
    ep = r.emulator.endpoints[r.endpoint]
    if len(ep.rollbacks) != rollbacks + 1:
        raise ScenarioFailed(
            name, "PromotedWait", f"the emulator did not roll the promotion back by an alarm: {ep.events}"
        )
    alarm = ep.rollbacks[-1]
    baseline = output_of(record, "Baseline")["baseline"]["result"]["endpoint_config"]
    if ep.config_name != baseline:
        raise ScenarioFailed(name, "Rollback", f"the endpoint is on {ep.config_name}, not the baseline {baseline}")
    found = agreement(name, r, old)
    return ScenarioResult(
        name, record, found, {"challenger": version(record), "crashed": crashed, "rolled_back_by": alarm}
    )
