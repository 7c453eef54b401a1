"""One reader, one table: a randomised answer from a SageMaker container carries the features it
was scored on (``logged_features``), and its data capture reads into exactly the ``features`` the
local server logs for the same answer; deterministic answers carry none; a malformed
``logged_features`` is quarantined with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from rankops.feedback import store
from rankops.lake import Lake
from rankops.monitoring.data_capture import capture_key, capture_line
from rankops.serving.invocations import TARGET_HEADER
from rankops.serving.server import build_server
from tests import serving_helpers as h
from tests.conftest import make_settings
from tests.integration.test_serving_container import model_archive

UNIFORM = {"exploration": {"uniform_share": 1.0}, "serving": {"latency_budget_ms": 600_000}}
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def answers(server: Any, bodies: list[dict[str, Any]], headers: dict[str, str] | None = None) -> list[dict]:
    client = h.AsgiClient(server.app)
    try:
        return [client.post("/invocations", json=b, headers=headers or {}).json() for b in bodies]
    finally:
        client.close()


def write_capture(destination: Path, lines: list[str], when: datetime = WHEN) -> None:
    path = Path(capture_key(str(destination), "ep", "champion", when))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_captured_randomised_answers_read_into_the_local_logs_features(serving_copy: Any, tmp_path: Path) -> None:
    settings = make_settings(serving_copy.settings.home, **UNIFORM)
    bodies = [{**h.request(6, f"u-{u}", start=u), "request_id": f"r-{u}", "ts": h.NOW} for u in range(5)]
    container = build_server(settings, model_dir=model_archive(settings, tmp_path / "model"))
    assert container.ranker.feedback is None, "in a container data capture is the log"
    captured = answers(container, bodies)
    forced = answers(
        container, [{**b, "request_id": f"f-{i}"} for i, b in enumerate(bodies[:2])], {TARGET_HEADER: "champion"}
    )
    container.ranker.lookup.close()
    assert all(a["policy"] == "uniform" and set(a["logged_features"]) for a in captured)
    assert all(a["policy"] == "deterministic" and "logged_features" not in a for a in forced), "stay small"

    local = build_server(settings)  # the same champion and store, logging to the lake
    assert local.ranker.feedback is not None
    local.ranker.feedback.start()
    try:
        logged = answers(local, bodies)
    finally:
        local.ranker.feedback.stop()
        local.ranker.lookup.close()
    assert [a["logged_features"] for a in logged] == [a["logged_features"] for a in captured], (
        "the local server answers as a container does: its log is capture too"
    )
    assert [a["ranking"] for a in logged] == [a["ranking"] for a in captured], "same draw, same order"

    lines = [
        capture_line(orjson.dumps(b), orjson.dumps(a), inference_time=WHEN)
        for b, a in zip(bodies, captured, strict=True)
    ]
    lines += [capture_line(orjson.dumps(bodies[0]), orjson.dumps(a), inference_time=WHEN) for a in forced]
    write_capture(tmp_path / "capture", lines)
    lake = Lake.from_settings(settings)
    from_capture = {r["request_id"]: r for r in store.read_capture(lake, str(tmp_path / "capture"), "ep").to_pylist()}
    from_lake = {r["request_id"]: r for r in store.read(lake).to_pylist()}
    for rid, row in from_lake.items():
        assert from_capture[rid]["features"] == row["features"], rid
        assert from_capture[rid]["items"] == row["items"] and from_capture[rid]["propensities"] == row["propensities"]
    assert len(from_lake) == 5 and len(from_capture) == 7
    assert from_capture["f-0"]["features"] is None and from_capture["f-0"]["policy"] == "deterministic"


@pytest.mark.parametrize(
    ("logged", "reason"),
    [
        ({"ctr_7d": [0.1]}, "logged_features.ctr_7d must be a list of 2 values"),
        ({"ctr_7d": [0.1, "x"]}, "logged_features.ctr_7d must hold numbers or null"),
        ([], "logged_features must be a non-empty object"),
    ],
)
def test_a_malformed_logged_features_is_quarantined_with_its_reason(tmp_path: Path, logged: Any, reason: str) -> None:
    lake = Lake({z: str(tmp_path / "lake" / z) for z in ("raw", "curated", "features", "artifacts")})
    request = orjson.dumps({"user_id": "u-1", "candidates": ["i-1", "i-2"]})
    ranking = [{"item_id": "i-2", "score": 1.5}, {"item_id": "i-1", "score": 0.5}]
    answer = {"ranking": ranking, "variant": "champion", "request_id": "r-1", "policy": "uniform",
              "propensities": [0.5, 0.5], "logged_features": logged}  # fmt: skip
    good = {**answer, "request_id": "r-2", "logged_features": {"ctr_7d": [0.2, None]}}
    write_capture(
        tmp_path / "capture", [capture_line(request, orjson.dumps(a), inference_time=WHEN) for a in (answer, good)]
    )
    table = store.read_capture(lake, str(tmp_path / "capture"), "ep")
    assert table["request_id"].to_pylist() == ["r-2"] and table["features"].to_pylist() == ['{"ctr_7d":[0.2,NaN]}']
    (quarantined,) = lake.read("raw", store.QUARANTINE).to_pylist()
    assert quarantined["reason"].startswith(f"champion: {reason}"), quarantined["reason"]


def test_a_windowed_capture_read_lists_only_the_windows_days(tmp_path: Path) -> None:
    lake = Lake({z: str(tmp_path / "lake" / z) for z in ("raw", "curated", "features", "artifacts")})
    request = orjson.dumps({"user_id": "u-1", "candidates": ["i-1"]})
    for rid, when in (("old", WHEN - timedelta(days=20)), ("new", WHEN)):
        answer = {"ranking": [{"item_id": "i-1", "score": 1.0}], "variant": "champion", "request_id": rid}
        write_capture(tmp_path / "capture", [capture_line(request, orjson.dumps(answer), inference_time=when)], when)
    (tmp_path / "capture" / "ep" / "champion" / "2026" / "11" / "30" / "23").mkdir(parents=True)  # an empty hour
    since = WHEN - timedelta(days=14)
    table = store.read_capture(lake, str(tmp_path / "capture"), "ep", since, WHEN + timedelta(hours=1))
    assert table["request_id"].to_pylist() == ["new"]
    assert store.read_capture(lake, str(tmp_path / "capture"), "ep")["request_id"].to_pylist() == ["old", "new"]
