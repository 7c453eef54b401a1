"""The canary judged on what users do, through the local release loop: a real server logs its
answers to the lake, outcome events join back, and ``rankops release canary`` holds, advances or
refuses on the cohorts' click-through rates, with the evidence in the step's record."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from rankops.errors import ReleaseError
from rankops.feedback import store
from rankops.lake import Lake
from rankops.release import local
from rankops.release.state import read_state, state_path
from rankops.serving.server import build_server
from tests import serving_helpers as h
from tests.conftest import make_settings

URL = "http://in-process"
RELEASE = {
    "canary_min_requests": 20,
    "max_latency_ratio": 50,
    "canary_outcomes": "required",
    "canary_ctr_mde": 0.25,  # a large effect, so the horizon is a few dozen answers per cohort
    "canary_contact_mde": 0,  # CTR only: the test clicks, it does not contact
}


class Server:
    """A built server (feedback log on) whose /release and /metrics the release checks read in-process."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        self.server = build_server(settings)
        self.client = h.AsgiClient(self.server.app)
        self.feedback = self.server.ranker.feedback
        assert self.feedback is not None
        self.feedback.start()
        self.sent = 0

    def release(self, url: str, timeout_s: float = 2.0) -> dict:  # type: ignore[type-arg]
        assert self.server.watcher is not None
        self.server.watcher.check_now()
        return dict(self.client.get("/release").json())

    def metrics(self, url: str, timeout_s: float = 5.0) -> str:
        return str(self.client.get("/metrics").text)

    def send(self, count: int) -> None:
        """``count`` answers to distinct users, then the feedback log flushed (stop flushes; restart)."""
        self.release(URL)  # the server follows the state document before answering
        for k in range(self.sent, self.sent + count):
            assert self.client.post("/invocations", json=h.request(12, user=f"u-{k}")).status_code == 200
        self.sent += count
        self.feedback.stop()
        self.feedback.start()

    def close(self) -> None:
        self.feedback.stop()
        self.client.close()
        self.server.ranker.lookup.close()


def click(settings, since: datetime, rate: dict[str, float]) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    """Outcome events for the answers logged since ``since``: a click at position 1 on the first
    ``rate[variant]`` share of each cohort's answers (not yet clicked). Returns what was written."""
    lake = Lake.from_settings(settings)
    logged = store.read(lake, since).to_pandas()
    done = set(store.read_outcomes(lake, since).to_pandas()["request_id"])
    rows, truth = [], {}
    for variant, answers in logged.groupby("variant"):
        ids = sorted(answers["request_id"])
        clicked = set(ids[: round(rate[str(variant)] * len(ids))])
        rows += sorted(clicked - done)
        truth[str(variant)] = {"answers": len(ids), "clicked": len(clicked | (done & set(ids)))}
    now = pd.Timestamp.now(tz="UTC").floor("ms")
    frame = pd.DataFrame({"request_id": rows, "position": 1, "outcome": "click", "value": 1.0, "ts": now})
    if len(frame):
        store.write_outcomes(lake, frame)
    return truth


@pytest.fixture
def canary(serving_copy, monkeypatch):  # type: ignore[no-untyped-def]
    settings = make_settings(serving_copy.settings.home, release=RELEASE)
    server = Server(settings)
    monkeypatch.setattr(local, "fetch_release", server.release)
    monkeypatch.setattr(local, "fetch_metrics", server.metrics)
    local.shadow(settings, serving_copy.versions["challenger"], url=URL)
    step = local.canary(settings, share=0.5, force=True, url=URL)
    yield settings, server, datetime.fromtimestamp(step.state.updated, UTC)
    server.close()


def test_a_canary_that_loses_clicks_is_refused_and_the_loop_rolls_it_back(canary) -> None:  # type: ignore[no-untyped-def]
    settings, server, since = canary
    server.send(300)
    with pytest.raises(ReleaseError, match="no outcome events since the step began"):
        local.canary(settings, url=URL)  # required: serving figures alone do not advance it
    truth = click(settings, since, {"champion": 0.6, "challenger": 0.2})
    with pytest.raises(ReleaseError, match=r"refused: .*ctr canary 0\.\d+ .* a significant loss"):
        local.canary(settings, url=URL)
    decision = local.status(settings, URL)["decision"]
    assert decision["action"] == "rollback"
    ctr = decision["evidence"]["outcomes"]["ctr"]
    assert ctr["control"]["answers"] == truth["champion"]["answers"]
    assert ctr["control"]["successes"] == truth["champion"]["clicked"]
    assert ctr["canary"]["successes"] == truth["challenger"]["clicked"]
    assert ctr["canary"]["answers"] >= ctr["n_required"] and ctr["interval"][1] < 0
    # the check the pipeline's local endpoint runs takes the same decision; the loop rolls back on it
    assert local.step_evidence(settings, local.current_state(settings), URL).action == "rollback"
    assert local.rollback(settings, url=URL).removed is not None
    assert read_state(state_path(settings.home)).mode == "off"


def test_inside_the_horizon_holds_then_an_equal_canary_advances_with_its_record(canary) -> None:  # type: ignore[no-untyped-def]
    settings, server, since = canary
    server.send(30)  # about 15 answers per cohort: short of the horizon whatever the clicks say
    click(settings, since, {"champion": 0.5, "challenger": 0.1})
    with pytest.raises(ReleaseError, match=r"not enough evidence yet: .*canary answers needed to judge"):
        local.canary(settings, url=URL)
    server.send(400)
    truth = click(settings, since, {"champion": 0.5, "challenger": 0.5})
    step = local.canary(settings, url=URL)
    assert step.state.canary_share == 1.0 and step.decision is not None and step.decision.ok
    entry = read_state(state_path(settings.home)).history[-1]
    assert entry["action"] == "canary" and entry["canary_share"] == 1.0
    ctr = entry["decision"]["evidence"]["outcomes"]["ctr"]
    assert ctr["canary"]["answers"] == truth["challenger"]["answers"] >= ctr["n_required"]
    assert ctr["interval"][0] > -0.25 and ctr["test"].startswith("two-proportion z-test")
    assert any(r.startswith("ctr canary ") for r in entry["decision"]["reasons"])
