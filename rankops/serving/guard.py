"""Guarding the online stores: per-store timing, error counting and a circuit breaker.

A store that is down answers fast (connection refused) or slowly (timeouts). In
both cases the server must keep its latency budget: after
``serving.breaker_failures`` consecutive failures (a read slower than
``serving.store_timeout_ms`` counts as one) the circuit opens and reads are
skipped for ``serving.breaker_reset_ms``; then one trial read decides whether it
closes again. Skipped and failed reads raise :class:`StoreError`, which the
ranking core turns into the next level of the fallback chain.

The breaker is a dozen lines of state; the libraries for it are decorator-based
and would hide the per-store metrics and the injected clock the tests rely on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from rankops.errors import StoreError

if TYPE_CHECKING:
    from rankops.features.online.base import ActiveVersion, OnlineStore
    from rankops.monitoring.metrics import ServingMetrics

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
T = TypeVar("T")


class CircuitBreaker:
    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May a call go to the store now? Once the reset period is over the circuit is half open:
        calls go through until the first data read decides (success closes, failure re-opens)."""
        with self._lock:
            if self.state == OPEN and self.clock() - self.opened_at >= self.reset_s:
                self.state = HALF_OPEN
            return self.state != OPEN

    def success(self) -> None:
        with self._lock:
            self.state, self.failures = CLOSED, 0

    def failure(self) -> bool:
        """Record a failure; True if this one opened the circuit."""
        with self._lock:
            self.failures += 1
            if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.threshold):
                self.state, self.opened_at = OPEN, self.clock()
                return True
            return False


class GuardedStore:
    """An :class:`OnlineStore` wrapper for the read path: timed, counted, circuit-broken."""

    def __init__(
        self, store: OnlineStore, breaker: CircuitBreaker, metrics: ServingMetrics, slow_s: float, name: str = ""
    ) -> None:
        self.store = store
        self.kind = store.kind
        self.name = name or store.kind
        self.breaker = breaker
        self.slow_s = slow_s
        self.worst_call_s = store.worst_call_s  # for the request deadline (lookup)
        self._seconds = metrics.feature_fetch_seconds.labels(self.name)
        self._errors = {r: metrics.store_errors.labels(self.name, r) for r in ("error", "slow", "circuit_open")}

    def _guarded(self, what: str, call: Callable[[], T]) -> T:
        """Only the data read closes the circuit: a cached version lookup succeeding says nothing."""
        if not self.breaker.allow():
            self._errors["circuit_open"].inc()
            raise StoreError(
                f"{self.name} store skipped: circuit open after {self.breaker.failures} consecutive failures "
                f"(retried every {self.breaker.reset_s * 1000:.0f} ms)"
            )
        started = time.perf_counter()
        try:
            result = call()
        except Exception as err:  # any client error (timeouts, refused connections) is a store failure
            self.breaker.failure()
            self._errors["error"].inc()
            raise StoreError(f"{self.name} store {what} failed: {err}") from err
        if what != "read":
            return result
        elapsed = time.perf_counter() - started
        self._seconds.observe(elapsed)
        if elapsed > self.slow_s:
            self._errors["slow"].inc()
            self.breaker.failure()
        else:
            self.breaker.success()
        return result

    def read_many(self, requests: Mapping[str, list[str]]) -> dict[str, list[bytes | None]]:
        return self._guarded("read", lambda: self.store.read_many(requests))

    def active_version(self, entity: str) -> ActiveVersion | None:
        return self._guarded("version lookup", lambda: self.store.active_version(entity))

    def write_batch(self, entity: str, version: str, keys: list[str], payloads: list[bytes]) -> None:
        self.store.write_batch(entity, version, keys, payloads)

    def activate(self, entity: str, version: str, columns: list[str], joins: list[str]) -> None:
        self.store.activate(entity, version, columns, joins)

    def abort(self, entity: str, version: str) -> None:
        self.store.abort(entity, version)

    def close(self) -> None:
        self.store.close()
