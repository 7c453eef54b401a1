"""The feedback log: answers of the real server written off the request path into the lake as
SageMaker data capture (the bodies as sent), read into the feedback table as AWS capture is,
outcomes joined back, bad records quarantined, a full queue and a failed write counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd

from rankops.feedback import store
from rankops.feedback.log import FeedbackLog
from rankops.feedback.record import SCHEMA
from rankops.lake import Lake
from rankops.monitoring.data_capture import capture_key, capture_line, parse_line
from rankops.monitoring.metrics import ServingMetrics
from rankops.serving.server import build_server
from tests import serving_helpers as h


def counted(metrics: ServingMetrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("rankops_feedback_records_total", {"outcome": outcome}) or 0.0


def test_every_answer_is_logged_and_outcomes_join_back(serving_copy) -> None:  # type: ignore[no-untyped-def]
    server = build_server(serving_copy.settings)
    feedback = server.ranker.feedback
    assert feedback is not None
    feedback.start()
    client = h.AsgiClient(server.app)
    try:
        given = client.post("/invocations", json={**h.request(6, "u-7"), "request_id": "req-1"}).json()
        generated = client.post("/invocations", json=h.request(4, "u-8")).json()
    finally:
        client.close()
        feedback.stop()  # flushes what is queued
        server.ranker.lookup.close()
    assert given["request_id"] == "req-1" and len(generated["request_id"]) == 32
    assert counted(server.ranker.metrics, "logged") == 2

    # written as data capture, in AWS's layout: <raw>/datacapture/<endpoint>/<cohort>/yyyy/mm/dd/hh/
    lake = Lake.from_settings(serving_copy.settings)
    files = sorted((Path(lake.uri("raw", "datacapture")) / "local" / "champion").rglob("*.jsonl"))
    assert len(files) == 1 and len(files[0].relative_to(lake.uri("raw", "datacapture")).parts) == 7
    captured = [parse_line(line, "local", "champion") for line in files[0].read_text().splitlines()]
    assert {c.response["request_id"] for c in captured} == {"req-1", generated["request_id"]}
    assert {c.request["user_id"] for c in captured} == {"u-7", "u-8"}, "the request bodies as sent"

    table = store.read(lake)
    assert table.schema == SCHEMA
    rows = {r["request_id"]: r for r in table.to_pylist()}
    logged = rows["req-1"]
    assert logged["items"] == [r["item_id"] for r in given["ranking"]], "candidates in the order shown"
    assert logged["scores"] == [r["score"] for r in given["ranking"]]
    assert logged["propensities"] == [1.0] * 6 and logged["policy"] == "deterministic", "a deterministic ranking"
    assert (logged["user_id"], logged["variant"], logged["fallback_level"]) == ("u-7", "champion", "champion")
    assert logged["model_version"] == serving_copy.versions["good"]
    assert json.loads(logged["context"]) == h.request(6)["context"]
    assert set(rows) == {"req-1", generated["request_id"]}

    outcomes = pd.DataFrame(
        {"request_id": ["req-1", "req-1", "req-1"], "position": [1, 1, 3], "outcome": ["click", "purchase", "click"]}
    )
    joined = store.join_outcomes(table, outcomes)
    assert len(joined) == 10
    first = joined[(joined.request_id == "req-1") & (joined.position == 1)].iloc[0]
    assert (first.item_id, first.click, first.purchase, first.contact) == (given["ranking"][0]["item_id"], 1, 1, 0)
    assert joined[joined.request_id == generated["request_id"]][["click", "contact", "purchase"]].sum().sum() == 0


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    metrics = ServingMetrics()
    lake = Lake({z: str(tmp_path / z) for z in ("raw", "curated", "features", "artifacts")})
    log = FeedbackLog(lake, metrics, 2)
    body = orjson.dumps({"user_id": "u-1", "candidates": ["i-1"], "context": {}})
    for k in range(5):  # no worker running: the queue is full after two
        answer = {"ranking": [{"item_id": "i-1", "score": 0.5}], "model_version": "1", "variant": "champion",
                  "request_id": f"r-{k}"}  # fmt: skip
        log.submit(body, orjson.dumps(answer), "champion")
    assert counted(metrics, "dropped") == 3
    log.start()
    log.stop()
    assert counted(metrics, "logged") == 2
    assert sorted(store.read(lake)["request_id"].to_pylist()) == ["r-0", "r-1"], "the first two were kept"


def test_a_failed_write_is_counted_and_the_log_goes_on(tmp_path: Path) -> None:
    metrics = ServingMetrics()
    raw = tmp_path / "raw"
    raw.write_text("a file where the raw zone's folder should be")  # every write under it fails
    log = FeedbackLog(Lake({z: str(tmp_path / z) for z in ("raw", "curated", "features", "artifacts")}), metrics)
    answer = {"ranking": [{"item_id": "i-1", "score": 0.5}], "model_version": "1", "variant": "champion"}
    log.submit(orjson.dumps({"user_id": "u-1", "candidates": ["i-1"]}), orjson.dumps(answer), "champion")
    log.start()
    log.stop()
    assert (counted(metrics, "failed"), counted(metrics, "logged")) == (1, 0)


def test_capture_reads_into_the_same_table_and_bad_lines_are_quarantined(tmp_path: Path) -> None:
    lake = Lake({z: str(tmp_path / "lake" / z) for z in ("raw", "curated", "features", "artifacts")})
    destination, when = str(tmp_path / "capture"), datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    request = orjson.dumps({"user_id": "u-1", "context": {"category": "toys"}, "candidates": ["i-1", "i-2"]})
    answer = {"ranking": [{"item_id": "i-2", "score": 1.5}, {"item_id": "i-1", "score": 0.5}], "model_version": "7",
              "variant": "fallback", "fallback": "champion failed", "request_id": "req-9"}  # fmt: skip
    broken = {**answer, "ranking": [{"item_id": "i-2"}], "request_id": "req-10"}
    lines = [capture_line(request, orjson.dumps(a), inference_time=when) for a in (answer, broken)]
    path = Path(capture_key(destination, "rankops-ep", "canary", when))
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([*lines, "{not json"]) + "\n")

    table = store.read_capture(lake, destination, "rankops-ep")
    assert table.schema == SCHEMA
    assert table.to_pylist() == [
        {
            "request_id": "req-9",
            "ts": when,
            "user_id": "u-1",
            "context": '{"category": "toys"}',
            "items": ["i-2", "i-1"],
            "scores": [1.5, 0.5],
            "propensities": [1.0, 1.0],
            "variant": "canary",
            "model_version": "7",
            "fallback_level": "fallback",
            "policy": "deterministic",
            "features": None,
        }
    ]
    quarantined = lake.read("raw", store.QUARANTINE).to_pylist()
    reasons = sorted(q["reason"] for q in quarantined)
    assert len(reasons) == 2 and reasons[0].startswith("canary: a ranking entry has no score")
    assert "not JSON" in reasons[1] and {q["source"] for q in quarantined} == {"capture:rankops-ep"}


def test_partitions_written_before_the_policy_and_features_columns_still_read(tmp_path: Path) -> None:
    import pyarrow as pa

    from rankops.feedback.record import validate

    lake = Lake({z: str(tmp_path / z) for z in ("raw", "curated", "features", "artifacts")})
    record = validate({"request_id": "old", "ts": datetime(2026, 1, 1, tzinfo=UTC), "user_id": "u", "context": "{}",
                       "items": ["i-1"], "scores": [1.0], "propensities": None, "variant": "champion",
                       "model_version": "1", "fallback_level": "champion"})  # fmt: skip
    before = pa.schema([f for f in SCHEMA if f.name not in ("policy", "features")])
    old = pa.Table.from_pylist([{k: record[k] for k in before.names}], schema=before)
    lake.write_partition("raw", store.DATASET, {"dt": "2026-01-01", "hour": "00", "batch": "0"}, old, "0")
    store.write(lake, [{**record, "request_id": "new", "ts": datetime(2026, 1, 1, 1, tzinfo=UTC)}])
    table = store.read(lake)
    assert table.schema == SCHEMA
    assert sorted(zip(table["request_id"].to_pylist(), table["policy"].to_pylist(), strict=True)) == [
        ("new", "deterministic"),
        ("old", None),
    ]


def test_a_capture_file_is_parsed_once_per_process_and_new_files_are_read(tmp_path: Path) -> None:
    """Capture files never change once written, so reading a window again (the simulator reads each
    hour, then the day, then drift windows) reuses what was parsed: a bad line is quarantined once;
    a file written since is read."""
    lake = Lake({z: str(tmp_path / "lake" / z) for z in ("raw", "curated", "features", "artifacts")})
    destination, when = str(tmp_path / "capture"), datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    request = orjson.dumps({"user_id": "u-1", "candidates": ["i-1"]})

    def write(request_id: str, extra: list[str]) -> None:
        answer = {"ranking": [{"item_id": "i-1", "score": 0.5}], "model_version": "1", "variant": "champion",
                  "request_id": request_id}  # fmt: skip
        path = Path(capture_key(destination, "ep", "champion", when))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([capture_line(request, orjson.dumps(answer), inference_time=when), *extra]) + "\n")

    write("r-1", ["{not json"])
    for _ in range(2):
        assert store.read_capture(lake, destination, "ep")["request_id"].to_pylist() == ["r-1"]
    assert len(lake.read("raw", store.QUARANTINE).to_pylist()) == 1, "the bad line quarantined once"
    write("r-2", [])
    assert sorted(store.read_capture(lake, destination, "ep")["request_id"].to_pylist()) == ["r-1", "r-2"]
