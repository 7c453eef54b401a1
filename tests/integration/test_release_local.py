"""Local releases: state transitions applied to MLflow aliases and the state document, the
server's watcher switching routings without reloading kept models, and the whole
shadow -> canary -> promote -> rollback loop against a running background server."""

from __future__ import annotations

import json
import time

import pytest

from rankops import registry
from rankops.errors import ReleaseError
from rankops.release import local
from rankops.release.state import read_state, state_path
from rankops.serving import background
from rankops.serving.entrypoint import build_server
from tests import serving_helpers as h
from tests.conftest import make_settings


def aliases(settings) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    return {a: registry.alias_version(settings, a) for a in ("champion", "challenger", "previous")}


def test_steps_update_aliases_and_state_together(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings, v = serving_copy.settings, serving_copy.versions
    with pytest.raises(ReleaseError, match="nothing to roll back"):
        local.rollback(settings)
    local.shadow(settings, v["challenger"])
    assert aliases(settings) == {"champion": v["good"], "challenger": v["challenger"], "previous": None}
    assert read_state(state_path(settings.home)).mode == "shadow"
    with pytest.raises(ReleaseError, match="not enough evidence"):
        local.canary(settings)  # nothing was shadowed yet
    assert local.canary(settings, force=True).state.canary_share == 0.1
    assert local.canary(settings, share=0.5, force=True).state.canary_share == 0.5
    promoted = local.promote(settings, force=True).state
    assert (promoted.champion, promoted.previous, promoted.challenger, promoted.mode) == (
        v["challenger"],
        v["good"],
        None,
        "off",
    )
    assert aliases(settings) == {"champion": v["challenger"], "challenger": None, "previous": v["good"]}
    result = local.rollback(settings)
    assert result.removed == v["challenger"]
    assert aliases(settings) == {"champion": v["good"], "challenger": None, "previous": None}
    client, _ = registry.connect(settings)
    tags = client.get_model_version(settings.mlflow.model_name, v["challenger"]).tags
    assert local.ROLLED_BACK_TAG in tags
    history = [e["action"] for e in read_state(state_path(settings.home)).history]
    assert history == ["shadow", "canary", "canary", "promote", "rollback"]


def test_unknown_versions_and_bad_shares_are_refused(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings = serving_copy.settings
    with pytest.raises(ReleaseError, match="has no version '99'"):
        local.shadow(settings, "99")
    with pytest.raises(ReleaseError, match="there is no challenger"):
        local.canary(settings, force=True)
    local.shadow(settings, serving_copy.versions["challenger"])
    with pytest.raises(ReleaseError, match=r"canary share must be in \(0, 1\]"):
        local.canary(settings, share=1.5, force=True)
    assert not state_path(settings.home).with_suffix(".tmp").exists()


def test_shadow_defaults_to_the_newest_other_version(serving_copy) -> None:  # type: ignore[no-untyped-def]
    assert local.shadow(serving_copy.settings).state.challenger == serving_copy.versions["challenger"]


def test_the_watcher_switches_without_reloading_kept_models(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings, v = serving_copy.settings, serving_copy.versions
    server = build_server(settings)
    watcher = server.watcher
    loads: list[str] = []
    original = watcher.load
    watcher.load = lambda version, role: loads.append(version) or original(version, role)  # type: ignore[func-returns-value]
    ranker = server.ranker

    local.shadow(settings, v["challenger"])
    assert watcher.check_now()
    assert ranker.routing.describe()["challenger"] == v["challenger"] and loads == [v["challenger"]]
    local.promote(settings, force=True)
    assert watcher.check_now()
    assert ranker.rank(h_request())["model_version"] == v["challenger"]
    local.rollback(settings)
    assert watcher.check_now()
    assert ranker.rank(h_request())["model_version"] == v["good"]
    assert loads == [v["challenger"]], "promotion and rollback reuse loaded models"
    assert not watcher.check_now(), "an unchanged file is not re-read"

    state_path(settings.home).write_text("{not json")
    assert not watcher.check_now()
    assert "not valid JSON" in watcher.last_error
    assert ranker.rank(h_request())["model_version"] == v["good"], "a bad document leaves the routing alone"
    value = ranker.metrics.registry.get_sample_value("rankops_release_reloads_total", {"outcome": "error"})
    assert value == 1
    ranker.lookup.close()


def h_request():  # type: ignore[no-untyped-def]
    from rankops.serving.schema import RankRequest

    doc = h.request(8)
    return RankRequest(doc["user_id"], doc["candidates"], doc["context"], h.NOW)


def send(url: str, count: int, users: int = 200, start: int = 0) -> list[dict]:  # type: ignore[type-arg]
    return [
        background.post_json(url, h.request(15, user=f"u-{(start + k) % users}", start=(k * 37) % 280))
        for k in range(count)
    ]


def wait_for(condition, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_the_whole_release_loop_against_a_running_server(serving_copy) -> None:  # type: ignore[no-untyped-def]
    v = serving_copy.versions
    settings = make_settings(
        serving_copy.settings.home,
        release={"shadow_min_requests": 40, "canary_min_requests": 20, "max_latency_ratio": 20},
    )
    server = background.start(settings.home, settings.env, "127.0.0.1", 0)
    url = server["url"]
    try:
        # a bad challenger: users never see it, the shadow comparison stops it
        assert local.shadow(settings, v["bad"]).switched_after_s is not None
        assert {r["model_version"] for r in send(url, 60)} == {v["good"]}
        wait_for(lambda: local.status(settings)["shadow"]["requests"] >= 60)
        with pytest.raises(ReleaseError, match=r"mean rank correlation .* is below"):
            local.canary(settings)
        local.rollback(settings)

        # a good one goes through shadow, the canary steps and promotion
        local.shadow(settings, v["challenger"])
        send(url, 60)
        wait_for(lambda: local.status(settings)["shadow"]["requests"] >= 60)
        status = local.status(settings)
        assert status["decision"]["action"] == "advance", (status["decision"], status["shadow"])
        step = local.canary(settings)
        assert step.state.canary_share == 0.1 and step.decision is not None and step.decision.ok
        answers = send(url, 400, users=400)
        canary_users = {a["model_version"] for a in answers}
        assert canary_users == {v["good"], v["challenger"]}
        assert local.canary(settings).state.canary_share == 0.5
        send(url, 100, users=200)
        assert local.canary(settings).state.canary_share == 1.0
        assert {r["model_version"] for r in send(url, 30)} == {v["challenger"]}
        promoted = local.promote(settings)
        assert promoted.switched_after_s is not None and promoted.switched_after_s < 2.0
        release = json.loads(json.dumps(local.status(settings)["server"]))
        assert (release["champion"], release["previous"], release["mode"]) == (v["challenger"], v["good"], "off")

        rolled = local.rollback(settings)
        assert rolled.switched_after_s is not None and rolled.switched_after_s < 2.0, "instant rollback"
        assert {r["model_version"] for r in send(url, 10)} == {v["good"]}
    finally:
        background.stop(settings.home)
