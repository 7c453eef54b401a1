"""The circuit breaker and the guarded store (a real embedded store, really broken)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rankops.errors import StoreError
from rankops.features.online.embedded import EmbeddedStore
from rankops.features.online.packing import pack_rows
from rankops.monitoring.metrics import ServingMetrics
from rankops.serving.guard import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, GuardedStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_the_reset() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 1.0, clock)
    assert not breaker.failure() and not breaker.failure()
    breaker.success()  # a success in between resets the count
    assert [breaker.failure() for _ in range(3)] == [False, False, True]
    assert breaker.state == OPEN and not breaker.allow()
    clock.now = 0.99
    assert not breaker.allow()
    clock.now = 1.0
    assert breaker.allow() and breaker.state == HALF_OPEN
    assert breaker.failure(), "a failed trial re-opens at once"
    assert not breaker.allow()
    clock.now = 2.5
    assert breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and breaker.allow()


def test_guarded_store_times_reads_counts_failures_and_skips_when_open(tmp_path: Path) -> None:
    path = tmp_path / "features.sqlite"
    store = EmbeddedStore(path)
    store.write_batch("item", "v1", ["i-1"], pack_rows("v1", np.array([[1.0, 2.0]])))
    store.activate("item", "v1", ["a", "b"], [])
    metrics = ServingMetrics()
    clock = Clock()
    guarded = GuardedStore(store, CircuitBreaker(2, 5.0, clock), metrics, slow_s=10.0)
    assert guarded.read_many({"item": ["i-1", "i-2"]})["item"][1] is None
    sample = metrics.registry.get_sample_value
    assert sample("rankops_feature_fetch_seconds_count", {"store": "embedded"}) == 1

    store.close()
    path.write_bytes(b"garbage" * 1000)
    (tmp_path / "features.sqlite-wal").unlink(missing_ok=True)
    for _ in range(2):
        with pytest.raises(StoreError, match="embedded store read failed"):
            guarded.read_many({"item": ["i-1"]})
    with pytest.raises(StoreError, match="circuit open after 2 consecutive failures"):
        guarded.read_many({"item": ["i-1"]})
    assert sample("rankops_store_errors_total", {"store": "embedded", "reason": "error"}) == 2
    assert sample("rankops_store_errors_total", {"store": "embedded", "reason": "circuit_open"}) == 1


def test_slow_reads_count_as_failures(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "features.sqlite")
    store.activate("item", "v1", ["a"], [])
    guarded = GuardedStore(store, CircuitBreaker(2, 5.0), ServingMetrics(), slow_s=0.0)
    guarded.read_many({"item": ["i-1"]})
    guarded.read_many({"item": ["i-1"]})  # answered, but too slow twice: the circuit opens
    assert guarded.breaker.state == OPEN
