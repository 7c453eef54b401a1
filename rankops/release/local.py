"""``rankops release shadow|canary|promote|rollback|status`` on the local platform.

Each step reads the current release state, checks the evidence (unless forced),
computes the next state with the pure transitions of :mod:`rankops.release.state`,
then applies it: MLflow aliases first (idempotent; a failure leaves the state
document, and so the server, untouched), the state document last (one atomic
rename, which the running server picks up within ``serving.release_recheck_ms``).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rankops import registry
from rankops.errors import ReleaseError
from rankops.release import state as transitions
from rankops.release.decisions import Decision, VariantStats, canary_decision, shadow_decision
from rankops.release.evidence import fetch_metrics, fetch_release, shadow_summary, variant_stats
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


def _latest_other_version(settings: Settings, champion: str | None) -> str:
    client, _ = registry.connect(settings)
    versions = client.search_model_versions(f"name = '{settings.mlflow.model_name}'")
    newer = sorted((int(v.version) for v in versions if str(v.version) != champion), reverse=True)
    if not newer:
        raise ReleaseError(
            "no version other than the champion is registered; train one with `rankops train --alias challenger`"
        )
    return str(newer[0])


def apply(settings: Settings, new: ReleaseState, removed: str | None = None) -> None:
    """Aliases, then the state document (see the module docstring for why in this order)."""
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
    write_state(state_path(settings.home), new)


def server_url(settings: Settings, url: str | None = None) -> str | None:
    if url:
        return url.rstrip("/")
    from rankops.serving import background

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


def canary_evidence(settings: Settings, url: str | None) -> Decision:
    if url is None:
        raise ReleaseError("no running server to take canary evidence from; pass --url, or --force to skip checks")
    stats = variant_stats(fetch_metrics(url))
    cfg = settings.release
    no_traffic = VariantStats(0, 0, None)
    return canary_decision(
        stats.get("champion", no_traffic),
        stats.get("challenger", no_traffic),
        min_requests=cfg.canary_min_requests,
        max_fallback_rate=cfg.max_fallback_rate,
        max_latency_ratio=cfg.max_latency_ratio,
        latency_budget_s=settings.serving.latency_budget_ms / 1000,
    )


def _checked(decision: Decision, step: str) -> Decision:
    if decision.action == "rollback":
        raise ReleaseError(
            f"{step} refused: {'; '.join(decision.reasons)}. Run `rankops release rollback` (or pass --force)"
        )
    if decision.action == "hold":
        raise ReleaseError(f"{step} refused, not enough evidence yet: {'; '.join(decision.reasons)} (or pass --force)")
    return decision


def _evidence(settings: Settings, state: ReleaseState, url: str | None, step: str) -> Decision | None:
    if state.mode == "shadow":
        return _checked(shadow_evidence(settings, state), step)
    if state.mode == "canary":
        return _checked(canary_evidence(settings, url), step)
    return None


def shadow(settings: Settings, version: str | None = None, url: str | None = None) -> StepResult:
    state = current_state(settings)
    version = version or registry.alias_version(settings, registry.CHALLENGER)
    version = version or _latest_other_version(settings, state.champion)
    _require_version(settings, version)
    new = transitions.start_shadow(state, version, time.time())
    shutil.rmtree(shadow_dir(settings), ignore_errors=True)  # a fresh comparison for the new pair
    apply(settings, new)
    return StepResult(new, switched_after_s=wait_for_server(server_url(settings, url), new))


def canary(settings: Settings, share: float | None = None, force: bool = False, url: str | None = None) -> StepResult:
    state = current_state(settings)
    target = share if share is not None else transitions.next_canary_share(state, settings.release.canary_steps)
    url = server_url(settings, url)
    decision = None if force else _evidence(settings, state, url, f"canary at {target:.0%}")
    new = transitions.set_canary(state, target, time.time())
    apply(settings, new)
    return StepResult(new, decision, switched_after_s=wait_for_server(url, new))


def promote(settings: Settings, force: bool = False, url: str | None = None) -> StepResult:
    state = current_state(settings)
    url = server_url(settings, url)
    decision = None if force else _evidence(settings, state, url, "promotion")
    new = transitions.promote(state, time.time())
    apply(settings, new)
    return StepResult(new, decision, switched_after_s=wait_for_server(url, new))


def rollback(settings: Settings, url: str | None = None) -> StepResult:
    new, removed = transitions.rollback(current_state(settings), time.time())
    apply(settings, new, removed)
    return StepResult(new, removed=removed, switched_after_s=wait_for_server(server_url(settings, url), new))


def status(settings: Settings, url: str | None = None) -> dict[str, Any]:
    state = current_state(settings)
    aliases = {
        a: registry.alias_version(settings, a) for a in (registry.CHAMPION, registry.CHALLENGER, registry.PREVIOUS)
    }
    url = server_url(settings, url)
    doc: dict[str, Any] = {
        "state": {k: v for k, v in state.__dict__.items() if k != "history"},
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
            doc["decision"] = canary_evidence(settings, url).as_dict()
        except ReleaseError as err:
            doc["decision"] = {"action": "hold", "reasons": [str(err)]}
    return doc
