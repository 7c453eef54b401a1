"""Stage-by-stage progress lines for long-running commands (the CLI and the demo print them)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
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


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[Path]:
    """Send file descriptor 2 to ``path`` while the block runs, so the JVM Spark starts (it inherits
    the descriptor, and keeps it), Java and library log lines land in the file and the terminal
    shows the command's own progress (stdout) only. Restored on the way out, errors included, so
    the CLI's one-line error still reaches the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("wb") as log:  # one run's lines
            os.dup2(log.fileno(), 2)
        yield path
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
