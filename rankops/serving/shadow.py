"""Shadow scoring: the challenger ranks a copy of live requests, off the request path.

The request thread only enqueues (features already fetched, the champion's
scores) and returns; one worker thread scores with the challenger and feeds a
:class:`~rankops.release.stats.ShadowAccumulator`. The queue is bounded: under
overload shadow work is dropped (and counted), never the user's request.
LightGBM releases the GIL while predicting, so the worker uses the other core.

Each process writes its snapshot to ``RANKOPS_HOME/release/shadow/<pid>.json``
every few seconds so ``rankops release status`` can merge all workers' figures.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.release.stats import ShadowAccumulator, summarize

if TYPE_CHECKING:
    from rankops.monitoring.metrics import ServingMetrics
    from rankops.serving.model import LoadedModel

log = logging.getLogger(__name__)
Job = tuple["LoadedModel", dict[str, np.ndarray], np.ndarray]


class ShadowScorer:
    def __init__(
        self,
        metrics: ServingMetrics,
        capacity: int = 1000,
        report_dir: Path | None = None,
        report_every_s: float = 2.0,
        bins: int = 20,
    ) -> None:
        self.metrics = metrics
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self.report_dir = report_dir
        self.report_every_s = report_every_s
        self.bins = bins
        self.accumulator = ShadowAccumulator()
        self.versions: tuple[str | None, str | None] = (None, None)
        self._thread: threading.Thread | None = None
        self._dirty = False
        self._counts = {o: metrics.shadow.labels(o) for o in ("scored", "dropped", "failed")}

    def reset(self, champion: LoadedModel | None, challenger: LoadedModel | None) -> None:
        """A new champion/challenger pair starts a fresh comparison."""
        self.accumulator = ShadowAccumulator()
        self.versions = (champion.version if champion else None, challenger.version if challenger else None)

    def submit(self, challenger: LoadedModel, columns: dict[str, np.ndarray], champion_scores: np.ndarray) -> bool:
        try:
            self.queue.put_nowait((challenger, columns, champion_scores))
        except queue.Full:
            self._counts["dropped"].inc()
            return False
        return True

    def score(self, job: Job) -> None:
        challenger, columns, champion_scores = job
        try:
            scores = challenger.predict(np.column_stack([columns[n] for n in challenger.feature_names]))
            if challenger.version != self.versions[1]:
                return  # scored for a challenger that has since been replaced
            rho = self.accumulator.add(champion_scores, scores)
        except Exception as err:  # a failing challenger is a finding, not a server error
            self._counts["failed"].inc()
            log.warning("shadow scoring with version %s failed: %s", challenger.version, err)
            return
        self._counts["scored"].inc()
        if not np.isnan(rho):
            self.metrics.shadow_rank_correlation.observe(rho)
        self._dirty = True

    def summary(self) -> dict[str, Any]:
        return {
            "champion": self.versions[0],
            "challenger": self.versions[1],
            **summarize(self.accumulator.snapshot(), self.bins),
        }

    def write_report(self) -> None:
        if self.report_dir is None or not self._dirty:
            return
        self._dirty = False
        self.report_dir.mkdir(parents=True, exist_ok=True)
        doc = {"champion": self.versions[0], "challenger": self.versions[1], "pid": os.getpid(), "updated": time.time()}
        doc.update(self.accumulator.snapshot())
        target = self.report_dir / f"{os.getpid()}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, target)

    def _run(self) -> None:
        next_report = time.monotonic() + self.report_every_s
        while True:
            try:
                job = self.queue.get(timeout=self.report_every_s)
            except queue.Empty:
                job = None
            else:
                if job is None:
                    self.queue.task_done()
                    break
                self.score(job)
                self.queue.task_done()
            if time.monotonic() >= next_report:
                self._write_quietly()
                next_report = time.monotonic() + self.report_every_s
        self._write_quietly()

    def _write_quietly(self) -> None:
        try:
            self.write_report()
        except OSError as err:
            log.warning("cannot write the shadow report: %s", err)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rankops-shadow", daemon=True)
            self._thread.start()

    def drain(self) -> None:
        """Wait until every queued job is scored (tests, orderly shutdown)."""
        self.queue.join()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread is not None:
            try:
                self.queue.put(None, timeout=timeout_s)
            except queue.Full:
                log.warning("shadow queue still full at shutdown; pending shadow scorings are dropped")
            self._thread.join(timeout_s)
            self._thread = None
