"""A periodic summary of how the server answered, as one JSON line per model version on stdout.

Prometheus sees the fallback chain locally; in AWS nothing scrapes the endpoint, but SageMaker
sends the container's stdout to CloudWatch Logs (``/aws/sagemaker/Endpoints/<endpoint>``).
Metric filters there (infra/constructs/endpoint_alarms.py) turn these lines into the metrics
``Answers`` and ``DegradedAnswers``, so a model that keeps answering 200 from a lower level of
the fallback chain (a broken feature store, a model that cannot score) trips a P1 alarm, rolls
a blue/green deployment back, and fails the pipeline's canary check like a 5xx would.

The line counts come from the request-latency histogram the server keeps anyway (a daemon
thread reads it every ``serving.answer_log_interval_s``): nothing is added to the request path.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from rankops.monitoring.metrics import ServingMetrics
from rankops.release.checks import ANSWER_EVENT

Counts = dict[str, tuple[float, float]]  # model version -> (answers, degraded answers)


def answer_counts(metrics: ServingMetrics, versions: Mapping[str, str | None]) -> Counts:
    """Answers and degraded answers so far, by the model version each routed variant runs
    (``versions``: variant -> version; an unknown variant is reported as ``none``)."""
    counts: Counts = {}
    for family in metrics.request_seconds.collect():
        for sample in family.samples:
            if not sample.name.endswith("_count") or sample.labels.get("outcome") == "rejected":
                continue
            version = versions.get(sample.labels.get("variant", "")) or "none"
            answers, degraded = counts.get(version, (0.0, 0.0))
            is_degraded = sample.labels.get("outcome") == "degraded"
            counts[version] = (answers + sample.value, degraded + (sample.value if is_degraded else 0.0))
    return counts


def summary_lines(before: Counts, after: Counts, interval_s: float) -> list[dict[str, Any]]:
    """One line per version that answered since ``before``."""
    lines = []
    for version, (answers, degraded) in sorted(after.items()):
        was_answers, was_degraded = before.get(version, (0.0, 0.0))
        if answers > was_answers:
            lines.append(
                {
                    "rankops": ANSWER_EVENT,
                    "model_version": version,
                    "answers": int(answers - was_answers),
                    "degraded": int(degraded - was_degraded),
                    "interval_s": interval_s,
                }
            )
    return lines


class AnswerSummary:
    """Writes :func:`summary_lines` every ``interval_s`` (and once more on stop)."""

    def __init__(
        self,
        metrics: ServingMetrics,
        versions: Callable[[], Mapping[str, str | None]],
        interval_s: float,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.versions = versions
        self.interval_s = interval_s
        self.write = write or (lambda line: print(line, file=sys.stdout, flush=True))
        self._last: Counts = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def emit(self) -> list[dict[str, Any]]:
        current = answer_counts(self.metrics, self.versions())
        lines = summary_lines(self._last, current, self.interval_s)
        self._last = current
        for line in lines:
            self.write(json.dumps(line, sort_keys=True))
        return lines

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._last = answer_counts(self.metrics, self.versions())
        self._thread = threading.Thread(target=self._loop, name="rankops-answer-summary", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.emit()
            except Exception:  # noqa: S112 - a summary must never take the server down
                continue

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        self.emit()
