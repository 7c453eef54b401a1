"""The local server's feedback log: every answer written as SageMaker data capture, off the request path.

In AWS the endpoint's data capture is the feedback log; locally the server writes the same thing
itself, in the same layout (``<raw>/datacapture/local/<cohort>/yyyy/mm/dd/hh/<file>.jsonl``: one
folder per cohort, as capture has one per production variant), and the one reader
(:func:`rankops.feedback.store.read`) builds the feedback records from it when they are read,
as it does from capture in AWS. So the serving process does no record or Parquet work at all
(that was ~100 µs of CPU per answer, ~12% of a server's throughput, docs/scoring.md).

The request thread appends ``(time, cohort, request body, response body)`` (bytes it already
holds) to a deque: it never waits, and beyond ``capacity`` waiting answers it drops one and counts
it in ``rankops_feedback_records_total{outcome="dropped"}``. One worker thread takes what waits
every ``DRAIN_S`` (never woken per answer), turns each entry into a capture line (~6 µs), and
writes one file per cohort and hour every ``flush_rows`` answers or ``flush_s`` seconds, and on
stop, atomically (a reader never sees half a file). A failed write is counted as ``failed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rankops.lake import write_atomic
from rankops.monitoring.data_capture import capture_bytes, capture_key, millisecond_time

if TYPE_CHECKING:
    from rankops.lake import Lake
    from rankops.monitoring.metrics import ServingMetrics

log = logging.getLogger(__name__)
DRAIN_S = 0.05  # how often the worker takes what the request threads appended
YIELD_EVERY = 64  # lines built between two GIL hand-overs (tail latency of waiting requests)
LOCAL_ENDPOINT = "local"  # the endpoint folder of the local server's capture
Entry = tuple[float, str, bytes, bytes]  # (epoch seconds answered, cohort, request body, response body)


def capture_uri(lake: Lake) -> str:
    """Where the local server's capture goes: the raw zone's ``datacapture/``, as in AWS."""
    return lake.uri("raw", "datacapture")


class FeedbackLog:
    def __init__(
        self, lake: Lake, metrics: ServingMetrics, capacity: int = 10_000, flush_rows: int = 5000, flush_s: float = 30
    ) -> None:
        self.lake = lake
        self.destination = capture_uri(lake)
        self.capacity, self.flush_rows, self.flush_s = capacity, flush_rows, flush_s
        self._entries: deque[Entry] = deque()  # append and popleft are atomic: no lock on the request path
        self._counts = {o: metrics.feedback.labels(o) for o in ("logged", "dropped", "failed")}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.clock: Callable[[], float] = time.time  # when an answer was given; the simulator's clock in simulation

    def submit(self, body: bytes, answer: bytes, cohort: str) -> None:
        """Called once per answer, on the request path, with the request and response bodies and
        the cohort the user was routed to: append or drop, never wait."""
        if len(self._entries) >= self.capacity:
            self._counts["dropped"].inc()
            return
        self._entries.append((self.clock(), cohort, body, answer))

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="rankops-feedback", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what waits, then end the worker."""
        if self._thread is not None:
            self._stopping.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        files: dict[tuple[str, str], list[bytes]] = {}  # (cohort, hour folder) -> lines of the next file
        first: dict[tuple[str, str], float] = {}  # the time of each file's first line (its name)
        pending = 0
        last = time.monotonic()
        while True:
            stopping = self._stopping.wait(min(DRAIN_S, max(0.0, self.flush_s - (time.monotonic() - last))))
            drained = 0
            while True:
                try:
                    at, cohort, body, answer = self._entries.popleft()
                except IndexError:
                    break
                when = millisecond_time(at)
                where = (cohort, when[:13])  # the UTC hour: a file never straddles one
                lines = files.get(where)
                if lines is None:
                    lines, first[where] = files.setdefault(where, []), at
                lines.append(capture_bytes(body, answer, inference_time=when))
                pending += 1
                drained += 1
                if drained % YIELD_EVERY == 0:  # hand the GIL to a waiting request now and then
                    time.sleep(0)
            if stopping or pending >= self.flush_rows or time.monotonic() - last >= self.flush_s:
                self.flush(files, first)
                files, first, pending, last = {}, {}, 0, time.monotonic()
            if stopping:
                return

    def flush(self, files: dict[tuple[str, str], list[bytes]], first: dict[tuple[str, str], float]) -> None:
        """Write one capture file per (cohort, hour); a failed write is counted, serving goes on."""
        for (cohort, hour), lines in files.items():
            opened = datetime.fromtimestamp(first[(cohort, hour)], UTC)
            uri = capture_key(self.destination, LOCAL_ENDPOINT, cohort, opened)
            try:
                write_atomic(*self.lake.filesystem(uri), b"\n".join(lines) + b"\n")
            except Exception as err:  # the lake is down: count the loss (alerted on), keep serving
                self._counts["failed"].inc(len(lines))
                log.error("feedback log: %d answers could not be written to %s: %s", len(lines), uri, err)
                continue
            self._counts["logged"].inc(len(lines))
