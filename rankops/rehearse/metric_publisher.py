"""The endpoint emulator's CloudWatch metrics, published off the request path in batches.

SageMaker publishes an endpoint's ``Invocations``, ``Invocation5XXErrors`` and ``ModelLatency``
asynchronously (CloudWatch sees them a little after the invocation), never on the invocation's own
path. The emulator did one synchronous ``PutMetricData`` per answer (two with a shadow variant): a
round trip to moto inside every ``InvokeEndpoint``, in the process whose GIL the emulator, the
pipeline runner and the Lambda handlers share, which cut a soak's replayed traffic to ~3 requests a
second (a full run's shadow check then saw 15 shadowed requests of the 20 it needs). Here the
datums are queued and sent every ``flush_s`` emulated seconds, up to :data:`MAX_DATUMS` per call;
every datum keeps its own value and timestamp, so statistics and percentiles are unchanged.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

FLUSH_S = 10.0  # emulated seconds between sends (0.1 s real at the rehearsal's 0.01)
MAX_DATUMS = 1000  # PutMetricData's limit of metric data per request


class MetricPublisher:
    """Queues metric datums per namespace and sends them from a daemon thread; :meth:`flush`
    sends what is queued now (callers that read metrics right after traffic)."""

    def __init__(self, cloudwatch: Any, factor: float, flush_s: float = FLUSH_S) -> None:
        if flush_s <= 0:
            raise ValueError(f"flush_s must be > 0, not {flush_s}")
        self._cw = cloudwatch
        self._queued: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # one send at a time: flush() returns after what it took is sent
        self._stop = threading.Event()
        self._failed: Exception | None = None
        self._timer = threading.Thread(target=self._tick, args=(flush_s * factor,), daemon=True, name="metrics")
        self._timer.start()

    def put(self, namespace: str, datums: list[dict[str, Any]]) -> None:
        with self._lock:
            self._queued[namespace].extend(datums)

    def flush(self) -> None:
        """Send every queued datum; raises if a timed send failed since the last flush (its datums are lost)."""
        self._send()
        failed, self._failed = self._failed, None
        if failed is not None:
            raise RuntimeError(f"endpoint metrics were lost: a timed send failed: {failed}") from failed

    def close(self) -> None:
        self._stop.set()
        self._timer.join(timeout=10)
        self.flush()

    def _send(self) -> None:
        with self._sending:
            with self._lock:
                queued, self._queued = self._queued, defaultdict(list)
            for namespace, datums in queued.items():
                for start in range(0, len(datums), MAX_DATUMS):
                    self._cw.put_metric_data(Namespace=namespace, MetricData=datums[start : start + MAX_DATUMS])

    def _tick(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self._send()
            except Exception as err:  # the timer lives on; the next flush() raises it
                self._failed = self._failed or err
