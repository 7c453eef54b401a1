"""Emulated time and blue/green traffic steps for the SageMaker endpoint emulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any


class Clock:
    """Emulated time: starts now and runs ``1 / factor`` times faster than the wall clock."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._start_wall, self._start = time.monotonic(), datetime.now(UTC)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._start_wall) / self.factor)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.factor)


def traffic_shares(routing: dict[str, Any]) -> list[float]:
    """The new fleet's traffic share at each step of a blue/green traffic shift."""
    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind == "CANARY":
        size = routing["CanarySize"]
        return [min(1.0, float(size["Value"]) / 100.0), 1.0]
    if kind == "LINEAR":
        step = float(routing["LinearStepSize"]["Value"]) / 100.0
        shares, share = [], step
        while share < 1.0:
            shares.append(share)
            share += step
        return [*shares, 1.0]
    return [1.0]
