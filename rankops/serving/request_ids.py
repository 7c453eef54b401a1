"""Request ids for answers whose request brought none: UUID4s (32 hex digits), as
``uuid.uuid4().hex`` makes them, but drawn from the OS's random source 4 KiB at a time.

``uuid.uuid4()`` reads ``os.urandom(16)`` per call, and ``os.urandom`` releases the GIL around its
system call: on a server whose background threads (feedback log, shadow scorer) want the GIL,
every answer then waited for a thread switch before it could be sent (cProfile of the server under
8-way load: ``posix.urandom`` ~0.5 ms per call in wall time, docs/scoring.md). The bytes are the same
kind (the OS's CSPRNG) and each is used once; a forked child drops the parent's unused bytes, so
two processes never hand out the same id.
"""

from __future__ import annotations

import os
import threading

import numpy as np

BATCH = 256  # ids per read of the OS's random source


def uuid4_hexes(raw: bytes) -> str:
    """``len(raw) // 16`` UUID4s as 32 hex digits each, back to back: each 16 bytes with the version
    (4) and variant (RFC 4122) bits set as ``uuid.UUID(bytes=..., version=4)`` sets them."""
    words = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16).copy()
    words[:, 6] = words[:, 6] & 0x0F | 0x40
    words[:, 8] = words[:, 8] & 0x3F | 0x80
    return words.tobytes().hex()


class RequestIds:
    """``next_id()`` -> a new UUID4 hex string; thread-safe."""

    def __init__(self, batch: int = BATCH) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1 id, not {batch}")
        self.batch = batch
        self._lock = threading.Lock()
        self._hexes = ""
        self._at = 0

    def drop(self) -> None:
        """Forget the unused ids (a forked child must not reuse its parent's)."""
        self._hexes, self._at = "", 0

    def next_id(self) -> str:
        with self._lock:
            if self._at >= len(self._hexes):
                self._hexes, self._at = uuid4_hexes(os.urandom(16 * self.batch)), 0
            hexes, at = self._hexes, self._at
            self._at = at + 32
        return hexes[at : at + 32]


_IDS = RequestIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_IDS.drop)


def new_request_id() -> str:
    """A fresh UUID4 hex string (the server's ids for requests that carry none)."""
    return _IDS.next_id()
