"""The servers' answer summaries: what becomes the Answers/DegradedAnswers metrics in AWS."""

from __future__ import annotations

import json

from rankops.monitoring.answer_summary import AnswerSummary, answer_counts, summary_lines
from rankops.monitoring.metrics import ServingMetrics


def answer(metrics: ServingMetrics, variant: str, outcome: str, times: int) -> None:
    for _ in range(times):
        metrics.request_seconds.labels(variant, outcome).observe(0.002)


def test_counts_are_per_model_version_and_leave_out_rejected_requests() -> None:
    metrics = ServingMetrics()
    answer(metrics, "champion", "ok", 3)
    answer(metrics, "champion", "degraded", 1)
    answer(metrics, "challenger", "degraded", 2)
    answer(metrics, "none", "rejected", 5)
    assert answer_counts(metrics, {"champion": "7", "challenger": "8"}) == {"7": (4.0, 1.0), "8": (2.0, 2.0)}


def test_each_line_reports_what_happened_since_the_last() -> None:
    metrics = ServingMetrics()
    written: list[str] = []
    summary = AnswerSummary(metrics, lambda: {"champion": "7"}, 60.0, write=written.append)
    answer(metrics, "champion", "ok", 10)
    summary.emit()
    answer(metrics, "champion", "ok", 4)
    answer(metrics, "champion", "degraded", 2)
    summary.emit()
    summary.emit()  # nothing answered since: no line
    lines = [json.loads(line) for line in written]
    assert lines == [
        {"rankops": "answers", "model_version": "7", "answers": 10, "degraded": 0, "interval_s": 60.0},
        {"rankops": "answers", "model_version": "7", "answers": 6, "degraded": 2, "interval_s": 60.0},
    ]


def test_a_version_that_served_nothing_writes_no_line() -> None:
    before = {"7": (5.0, 0.0)}
    assert summary_lines(before, {"7": (5.0, 0.0), "8": (1.0, 1.0)}, 30.0) == [
        {"rankops": "answers", "model_version": "8", "answers": 1, "degraded": 1, "interval_s": 30.0}
    ]


def test_the_thread_writes_on_its_interval_and_once_more_on_stop() -> None:
    metrics = ServingMetrics()
    written: list[str] = []
    summary = AnswerSummary(metrics, lambda: {"champion": "3"}, 0.05, write=written.append)
    summary.start()
    answer(metrics, "champion", "degraded", 1)
    summary.stop()
    assert [json.loads(line)["degraded"] for line in written] == [1]
    off = AnswerSummary(metrics, lambda: {"champion": "3"}, 0.0, write=written.append)
    off.start()
    assert off._thread is None, "interval 0 turns the summary off"
