"""Local releases: state transitions applied to MLflow aliases and the state document, the
server's watcher switching routings without reloading kept models, and the whole
shadow -> canary -> promote -> rollback loop against a running background server."""

from __future__ import annotations

import json
import time

import pytest

from rankops import background, registry
from rankops.errors import ReleaseError
from rankops.release import local
from rankops.release.state import read_state, state_path
from rankops.serving.server import build_server
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
        assert promoted.switched_after_s is not None, "the server switched (the release waits for it)"
        release = json.loads(json.dumps(local.status(settings)["server"]))
        assert (release["champion"], release["previous"], release["mode"]) == (v["challenger"], v["good"], "off")

        rolled = local.rollback(settings)
        assert rolled.switched_after_s is not None, "the rollback switched the server back"
        assert {r["model_version"] for r in send(url, 10)} == {v["good"]}
    finally:
        background.stop(settings.home)


# -- canary evidence is counted per step ------------------------------------------------------
URL = "http://in-process"


class InProcessServer:
    """A built server whose /release and /metrics the release checks read in-process; each read of
    /release first lets the watcher pick up the state file (as its thread would)."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        self.server = build_server(settings)
        self.client = h.AsgiClient(self.server.app)

    def release(self, url: str, timeout_s: float = 2.0) -> dict:  # type: ignore[type-arg]
        assert self.server.watcher is not None
        self.server.watcher.check_now()
        return dict(self.client.get("/release").json())

    def metrics(self, url: str, timeout_s: float = 5.0) -> str:
        return str(self.client.get("/metrics").text)

    def send(self, count: int, start: int = 0) -> list[str | None]:
        from rankops.serving.schema import RankRequest

        answers = []
        for k in range(start, start + count):
            doc = h.request(6, user=f"u-{k}")
            answers.append(
                self.server.ranker.rank(RankRequest(doc["user_id"], doc["candidates"], doc["context"], h.NOW))[
                    "model_version"
                ]
            )
        return answers

    def close(self) -> None:
        self.client.close()
        self.server.ranker.lookup.close()


@pytest.fixture
def in_process(serving_copy, monkeypatch):  # type: ignore[no-untyped-def]
    settings = make_settings(serving_copy.settings.home, release={"canary_min_requests": 20, "max_latency_ratio": 50})
    server = InProcessServer(settings)
    monkeypatch.setattr(local, "fetch_release", server.release)
    monkeypatch.setattr(local, "fetch_metrics", server.metrics)
    yield settings, serving_copy.versions, server
    server.close()


def test_a_new_challenger_starts_with_no_evidence(in_process) -> None:  # type: ignore[no-untyped-def]
    """The audit's reproduction: a canary that served requests and was rolled back must not lend its
    counters to the next challenger (the server's counters say "challenger", not which version)."""
    settings, v, server = in_process
    local.shadow(settings, v["challenger"], url=URL)
    local.canary(settings, force=True, url=URL)
    served = server.send(400)
    assert served.count(v["challenger"]) >= 20
    assert local.canary(settings, url=URL).state.canary_share == 0.5, "its own traffic lets it advance"
    local.rollback(settings, url=URL)

    local.shadow(settings, v["bad"], url=URL)
    step = local.canary(settings, share=0.1, force=True, url=URL)
    assert step.state.baseline is not None and step.state.baseline["requests"]["challenger"]["ok"] > 0
    with pytest.raises(ReleaseError, match=f"no evidence yet: challenger version {v['bad']} served no requests"):
        local.canary(settings, url=URL)
    with pytest.raises(ReleaseError, match="no evidence yet"):
        local.promote(settings, url=URL)
    assert local.status(settings, URL)["decision"]["action"] == "hold"
    assert local.current_state(settings).canary_share == 0.1, "refused steps change nothing"

    served = server.send(400, start=1000)
    assert served.count(v["bad"]) >= 20
    step = local.canary(settings, url=URL)
    assert step.decision is not None and step.decision.ok
    assert step.decision.reasons[0].startswith(f"challenger: {served.count(v['bad'])} requests"), step.decision


def test_each_step_counts_only_its_own_requests(in_process) -> None:  # type: ignore[no-untyped-def]
    settings, v, server = in_process
    local.shadow(settings, v["challenger"], url=URL)
    local.canary(settings, force=True, url=URL)
    at_10 = server.send(400).count(v["challenger"])
    assert local.canary(settings, url=URL).state.canary_share == 0.5
    with pytest.raises(ReleaseError, match="no evidence yet"):
        local.canary(settings, url=URL)  # the 10% step's requests do not count for the 50% step
    at_50 = server.send(60, start=5000).count(v["challenger"])
    assert 0 < at_50 < at_10 + at_50
    step = local.canary(settings, url=URL)
    assert step.state.canary_share == 1.0
    assert step.decision is not None and step.decision.reasons[0].startswith(f"challenger: {at_50} requests")


def test_without_a_snapshot_only_a_server_started_after_the_step_counts(in_process, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings, v, server = in_process
    local.shadow(settings, v["challenger"], url=URL)
    local.canary(settings, force=True, url=URL)
    server.send(400)
    # a step applied while no server could be reached: no baseline of this server's counters
    monkeypatch.setattr(local, "fetch_metrics", lambda url, timeout_s=5.0: (_ for _ in ()).throw(ReleaseError("down")))
    local.canary(settings, share=0.5, force=True, url=URL)
    assert "down" in local.current_state(settings).baseline["error"]
    monkeypatch.setattr(local, "fetch_metrics", server.metrics)
    with pytest.raises(ReleaseError, match=r"no evidence yet: the server at .* has been counting since before"):
        local.canary(settings, url=URL)

    restarted = InProcessServer(settings)  # its counters start after the step: all of them count
    monkeypatch.setattr(local, "fetch_release", restarted.release)
    monkeypatch.setattr(local, "fetch_metrics", restarted.metrics)
    try:
        served = restarted.send(100, start=7000).count(v["challenger"])
        step = local.canary(settings, url=URL)
        assert step.decision is not None and step.decision.reasons[0].startswith(f"challenger: {served} requests")
    finally:
        restarted.close()
