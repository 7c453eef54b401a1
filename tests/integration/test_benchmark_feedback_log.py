"""The feedback-log benchmark runs at a tiny size and prints its figures; the answers it logs are
ones the real log accepts (every answer read back as a valid record; a randomised answer's
features JSON holds every logged column, a deterministic answer logs none)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import feedback_log
from rankops.feedback import store
from rankops.feedback.log import FeedbackLog
from rankops.lake import Lake
from rankops.monitoring.metrics import ServingMetrics
from rankops.serving.schema import encode
from tests.conftest import REPO


def test_feedback_log_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.feedback_log", "--answers", "30", "--rounds", "2"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["submit_cpu_us"] > 0 and out["worker_cpu_us"] > 0 and out["read_cpu_us"] > 0
    # each figure is rounded on its own, so their sum may differ from the total by one rounding step
    assert out["serving_process_cpu_us"] == pytest.approx(out["submit_cpu_us"] + out["worker_cpu_us"], abs=0.1)
    assert len(out["rounds"]) == 2
    randomised = out["randomised"]  # answers that carry their scored features
    assert out["features_per_answer"] == 0 and randomised["features_per_answer"] > 0
    assert randomised["worker_cpu_us"] > 0 and randomised["read_cpu_us"] > 0 and len(randomised["rounds"]) == 2


def test_its_answers_make_valid_records_as_the_server_logs_them(tmp_path: Path) -> None:
    for randomised in (False, True):
        lake = Lake({z: str(tmp_path / str(randomised) / z) for z in ("raw", "curated", "features", "artifacts")})
        log = FeedbackLog(lake, ServingMetrics())
        logged = feedback_log.answers(3, 20, seed=1, randomised=randomised)
        for body, response in logged:
            log.submit(body, encode(response), "champion")
        log.start()
        log.stop()
        rows = {r["request_id"]: r for r in store.read(lake).to_pylist()}
        assert len(rows) == 3
        for _, response in logged:
            record = rows[response["request_id"]]
            assert record["items"] == [r["item_id"] for r in response["ranking"]]
            if not randomised:  # a deterministic answer logs no features (docs/feedback.md)
                assert record["features"] is None and record["policy"] == "deterministic"
                continue
            assert record["policy"] == "uniform"
            assert record["features"] is not None
            assert set(json.loads(record["features"])) == set(response["logged_features"])
