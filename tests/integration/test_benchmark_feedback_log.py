"""The feedback-log benchmark runs at a tiny size and prints its figures; the answers it logs are
ones the real log accepts (every record valid; a randomised answer's features JSON holds every
logged column, a deterministic answer logs none)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import feedback_log
from rankops.feedback.record import from_answer
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
    assert out["record_cpu_us"] > 0 and out["write_cpu_us"] > 0
    # each figure is rounded to 0.1 us on its own, so their sum may differ from the total by one rounding step
    assert out["total_cpu_us"] == pytest.approx(out["record_cpu_us"] + out["write_cpu_us"], abs=0.1 + 1e-9)
    assert len(out["rounds"]) == 2
    randomised = out["randomised"]  # answers that log their scored features
    assert out["features_per_answer"] == 0 and randomised["features_per_answer"] > 0
    assert randomised["record_cpu_us"] > 0 and randomised["write_cpu_us"] > 0 and len(randomised["rounds"]) == 2


def test_its_answers_make_valid_records_as_the_server_logs_them() -> None:
    for randomised in (False, True):
        logged = feedback_log.answers(3, 20, seed=1, randomised=randomised)
        for k, (request, response, columns) in enumerate(logged):
            record = from_answer(request, response, "champion", feedback_log.NOW + k, columns)
            assert record["items"] == [r["item_id"] for r in response["ranking"]]
            if not randomised:  # a deterministic answer logs no features (docs/feedback.md)
                assert columns is None and record["features"] is None and record["policy"] == "deterministic"
                continue
            assert record["policy"] == "uniform" and columns is not None
            assert record["features"] is not None and set(json.loads(record["features"])) == set(columns)
