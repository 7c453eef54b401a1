"""``rankops release shadow|canary|promote|rollback|status`` on the local platform.

Each step reads the current release state, checks the evidence (unless forced),
computes the next state with the pure transitions of :mod:`rankops.release.state`,
then applies it: MLflow aliases first (idempotent; a failure leaves the state
document, and so the server, untouched), the state document last (one atomic
rename, which the running server picks up within ``serving.release_recheck_ms``).

The server's request counters are cumulative and say ``challenger``, not which
version. So applying a step also snapshots them into the state (``baseline``), and
a canary check counts only what the server measured since its step began: a new
challenger starts with no evidence, and the 50% step is not judged on the 10%
step's traffic. Requests answered in the moment between the snapshot and the
server's switch (at most ``serving.release_recheck_ms``) count for the new step.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rankops import registry
from rankops.errors import ReleaseError
from rankops.integrity import IntegrityError
from rankops.release import ctr_judge
from rankops.release import state as transitions
from rankops.release.decisions import Decision, VariantStats, canary_decision, shadow_decision
from rankops.release.evidence import (
    Counters,
    counters_since,
    fetch_metrics,
    fetch_release,
    request_counters,
    shadow_summary,
    stats_from_counters,
)
from rankops.release.state import ReleaseState, read_state, state_path, write_state

if TYPE_CHECKING:
    from pathlib import Path

    from rankops.config import Settings

ROLLED_BACK_TAG = "rankops.rolled_back_at"


@dataclass
class StepResult:
    state: ReleaseState
    decision: Decision | None = None
    removed: str | None = None
    switched_after_s: float | None = None  # how long the running server took to serve the new state


def state_from_aliases(settings: Settings) -> ReleaseState:
    """The state implied by the registry's aliases (before any ``rankops release`` ran)."""
    versions = {a: registry.alias_version(settings, a) for a in (registry.CHAMPION, registry.PREVIOUS)}
    return ReleaseState(champion=versions[registry.CHAMPION], previous=versions[registry.PREVIOUS])


def current_state(settings: Settings) -> ReleaseState:
    return read_state(state_path(settings.home)) or state_from_aliases(settings)


def shadow_dir(settings: Settings) -> Path:
    return settings.home / "release" / "shadow"


def _require_version(settings: Settings, version: str) -> None:
    from mlflow.exceptions import MlflowException

    client, _ = registry.connect(settings)
    try:
        client.get_model_version(settings.mlflow.model_name, version)
    except MlflowException:
        raise ReleaseError(f"model {settings.mlflow.model_name!r} has no version {version!r}") from None
    verify_gated(settings, version)


def verify_gated(settings: Settings, version: str) -> None:
    """Only what the gate judged is released: the version's model file must have the SHA-256 of
    its ``gate.sha256`` tag (:mod:`rankops.integrity`), else :class:`ReleaseError`."""
    try:
        registry.load_version_booster(settings, version)
    except IntegrityError as err:
        raise ReleaseError(f"version {version} not released: {err}") from None


def _latest_other_version(settings: Settings, champion: str | None) -> str:
    client, _ = registry.connect(settings)
    versions = client.search_model_versions(f"name = '{settings.mlflow.model_name}'")
    newer = sorted((int(v.version) for v in versions if str(v.version) != champion), reverse=True)
    if not newer:
        raise ReleaseError(
            "no version other than the champion is registered; train one with `rankops train --alias challenger`"
        )
    return str(newer[0])


def take_baseline(url: str | None, now: float | None = None) -> dict[str, Any]:
    """The evidence counters of the server at ``url`` as they stand (see the module docstring)."""
    base: dict[str, Any] = {"taken_at": now if now is not None else time.time(), "instance": None, "requests": {}}
    if url is None:
        return base  # no server running: one started later counts from zero, after this step
    try:
        instance = fetch_release(url).get("metrics_instance")
        counters = request_counters(fetch_metrics(url))
    except (OSError, ReleaseError, ValueError) as err:
        return {**base, "error": f"cannot read the server's counters at {url}: {err}"}
    return {**base, "instance": instance, "requests": counters}


def apply(settings: Settings, new: ReleaseState, removed: str | None = None, url: str | None = None) -> ReleaseState:
    """Aliases, then the state document (see the module docstring for why in this order), with the
    serving evidence as it stands now as the new step's baseline. Returns the state written."""
    from mlflow.exceptions import MlflowException

    client, _ = registry.connect(settings)
    name = settings.mlflow.model_name
    for alias, version in new.aliases().items():
        if version is not None:
            client.set_registered_model_alias(name, alias, version)
        else:
            with contextlib.suppress(MlflowException):  # the alias was not set
                client.delete_registered_model_alias(name, alias)
    if removed is not None:
        client.set_model_version_tag(name, removed, ROLLED_BACK_TAG, str(new.updated))
    new = replace(new, baseline=take_baseline(server_url(settings, url)))
    write_state(state_path(settings.home), new)
    return new


def server_url(settings: Settings, url: str | None = None) -> str | None:
    if url:
        return url.rstrip("/")
    from rankops import background

    running = background.status(settings.home)
    return str(running["url"]) if running else None


def wait_for_server(url: str | None, state: ReleaseState, timeout_s: float = 5.0) -> float | None:
    """Seconds until the server at ``url`` serves ``state`` (None: no server, or it did not switch in time)."""
    if url is None:
        return None
    want = {
        "champion": state.champion,
        "challenger": state.challenger if state.mode != "off" else None,
        "mode": state.mode,
        "canary_share": state.canary_share if state.mode == "canary" else 0.0,
    }
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            doc = fetch_release(url)
        except OSError:
            return None
        if {k: doc.get(k) for k in want} == want:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def shadow_evidence(settings: Settings, state: ReleaseState) -> Decision:
    cfg = settings.release
    summary = shadow_summary(shadow_dir(settings), state.champion, state.challenger, cfg.shadow_bins)
    return shadow_decision(summary, cfg.shadow_min_requests, cfg.min_rank_correlation, cfg.max_kl_divergence)


def _step_name(state: ReleaseState) -> str:
    if state.mode == "canary":
        step = f"canary at {state.canary_share:.0%}"
    else:
        step = state.mode if state.mode != "off" else "last"
    when = datetime.fromtimestamp(state.updated, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if state.updated else "?"
    return f"{step} step (applied {when})"


def counted_since_step(state: ReleaseState, url: str) -> tuple[Counters | None, str]:
    """The server's request counters since the current step began; ``None`` and why, if that cannot be told."""
    try:
        instance = fetch_release(url).get("metrics_instance") or {}
    except (OSError, ValueError) as err:
        raise ReleaseError(f"cannot read the release served at {url}: {err}") from err
    counters = request_counters(fetch_metrics(url))
    base = state.baseline or {}
    same_life = isinstance(base.get("instance"), dict) and base["instance"].get("id") == instance.get("id")
    if same_life and instance.get("id"):
        return counters_since(counters, base.get("requests") or {}), ""
    if float(instance.get("started") or 0.0) >= state.updated:
        return counters, ""  # the server (so its counters) started after the step: all of it is this step's
    why = base.get("error") or "no snapshot of its counters was taken when the step was applied"
    return None, (
        f"no evidence yet: the server at {url} has been counting since before the {_step_name(state)} and {why}; "
        "re-apply the step to start counting from now"
    )


def canary_evidence(settings: Settings, state: ReleaseState, url: str | None) -> Decision:
    """Judge the challenger on the requests served since the current step began (see the module docstring)."""
    if url is None:
        raise ReleaseError("no running server to take canary evidence from; pass --url, or --force to skip checks")
    since, why = counted_since_step(state, url)
    if since is None:
        return Decision("hold", [why])
    stats = stats_from_counters(since)
    no_traffic = VariantStats(0, 0, None)
    challenger = stats.get("challenger", no_traffic)
    if challenger.requests == 0:
        served = f"challenger version {state.challenger} served no requests since the {_step_name(state)}"
        return Decision("hold", [f"no evidence yet: {served}"])
    cfg = settings.release
    decision = canary_decision(
        stats.get("champion", no_traffic),
        challenger,
        min_requests=cfg.canary_min_requests,
        max_fallback_rate=cfg.max_fallback_rate,
        max_latency_ratio=cfg.max_latency_ratio,
        latency_budget_s=settings.serving.latency_budget_ms / 1000,
        min_latency_increase_s=cfg.min_latency_increase_ms / 1000,
    )
    serving = Decision(decision.action, [*decision.reasons, f"counted since the {_step_name(state)}"])
    return ctr_judge.with_outcomes(serving, ctr_judge.outcome_decision(settings, state))


def step_evidence(settings: Settings, state: ReleaseState, url: str | None) -> Decision:
    """The check of the current step, shared by ``rankops release`` and the pipeline's local endpoint:
    the shadow comparison in shadow mode, else the canary figures since the step began."""
    if state.mode == "shadow":
        return shadow_evidence(settings, state)
    return canary_evidence(settings, state, url)


def _checked(decision: Decision, step: str) -> Decision:
    if decision.action == "rollback":
        raise ReleaseError(
            f"{step} refused: {'; '.join(decision.reasons)}. Run `rankops release rollback` (or pass --force)"
        )
    if decision.action == "hold":
        raise ReleaseError(f"{step} refused, not enough evidence yet: {'; '.join(decision.reasons)} (or pass --force)")
    return decision


def _evidence(settings: Settings, state: ReleaseState, url: str | None, step: str) -> Decision | None:
    if state.mode in ("shadow", "canary"):
        return _checked(step_evidence(settings, state, url), step)
    return None


def recorded(state: ReleaseState, decision: Decision | None) -> ReleaseState:
    """``state`` whose newest history entry (the step just taken) keeps the decision that let it
    happen, evidence included (``None``: forced here; the pipeline's check keeps its own record)."""
    if not state.history or decision is None:
        return state
    entry = {**state.history[-1], "decision": decision.as_dict()}
    return replace(state, history=(*state.history[:-1], entry))


def shadow(settings: Settings, version: str | None = None, url: str | None = None) -> StepResult:
    state = current_state(settings)
    version = version or registry.alias_version(settings, registry.CHALLENGER)
    version = version or _latest_other_version(settings, state.champion)
    _require_version(settings, version)
    new = transitions.start_shadow(state, version, time.time())
    shutil.rmtree(shadow_dir(settings), ignore_errors=True)  # a fresh comparison for the new pair
    url = server_url(settings, url)
    new = apply(settings, new, url=url)
    return StepResult(new, switched_after_s=wait_for_server(url, new))


def canary(settings: Settings, share: float | None = None, force: bool = False, url: str | None = None) -> StepResult:
    state = current_state(settings)
    target = share if share is not None else transitions.next_canary_share(state, settings.release.canary_steps)
    url = server_url(settings, url)
    decision = None if force else _evidence(settings, state, url, f"canary at {target:.0%}")
    new = apply(settings, recorded(transitions.set_canary(state, target, time.time()), decision), url=url)
    return StepResult(new, decision, switched_after_s=wait_for_server(url, new))


def promote(settings: Settings, force: bool = False, url: str | None = None) -> StepResult:
    state = current_state(settings)
    url = server_url(settings, url)
    decision = None if force else _evidence(settings, state, url, "promotion")
    new = apply(settings, recorded(transitions.promote(state, time.time()), decision), url=url)
    return StepResult(new, decision, switched_after_s=wait_for_server(url, new))


def rollback(settings: Settings, url: str | None = None) -> StepResult:
    new, removed = transitions.rollback(current_state(settings), time.time())
    url = server_url(settings, url)
    new = apply(settings, new, removed, url=url)
    return StepResult(new, removed=removed, switched_after_s=wait_for_server(url, new))


def status(settings: Settings, url: str | None = None) -> dict[str, Any]:
    state = current_state(settings)
    aliases = {
        a: registry.alias_version(settings, a) for a in (registry.CHAMPION, registry.CHALLENGER, registry.PREVIOUS)
    }
    url = server_url(settings, url)
    doc: dict[str, Any] = {
        "state": {k: v for k, v in state.__dict__.items() if k not in ("history", "baseline")},
        "evidence_since": {k: v for k, v in (state.baseline or {}).items() if k != "requests"} or None,
        "aliases": aliases,
        "aliases_match_state": aliases == state.aliases(),
        "history": list(state.history[-5:]),
        "server": None,
    }
    if url is not None:
        try:
            doc["server"] = {"url": url, **fetch_release(url)}
        except OSError as err:
            doc["server"] = {"url": url, "error": str(err)}
    if state.mode == "shadow":
        cfg = settings.release
        doc["shadow"] = shadow_summary(shadow_dir(settings), state.champion, state.challenger, cfg.shadow_bins)
        doc["decision"] = shadow_evidence(settings, state).as_dict()
    elif state.mode == "canary" and url is not None:
        try:
            doc["decision"] = canary_evidence(settings, state, url).as_dict()
        except ReleaseError as err:
            doc["decision"] = {"action": "hold", "reasons": [str(err)]}
    return doc
