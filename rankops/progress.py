"""Stage-by-stage progress lines for long-running commands (the CLI and the demo print them)."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Stage-by-stage progress lines with elapsed time, for long-running commands."""

    def __init__(self, total: int | None = None, stream: Any = None) -> None:
        self.total = total
        self.step = 0
        self.stream = stream or sys.stdout
        self.started = time.perf_counter()
        self._stage_started = self.started

    def stage(self, title: str) -> None:
        self.step += 1
        self._stage_started = time.perf_counter()
        counter = f"[{self.step}/{self.total}] " if self.total else ""
        print(f"{counter}{title}", file=self.stream, flush=True)

    def info(self, message: str) -> None:
        print(f"      {message}", file=self.stream, flush=True)

    def done(self) -> None:
        print(f"      done in {time.perf_counter() - self._stage_started:.1f}s", file=self.stream, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
