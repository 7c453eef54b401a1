"""Stores for the serving benchmark and the Redis fault tests, built from the real backends.

The benchmark serves item features only (so rankops and the floor read the same values
in one round trip each): items are written without seller/category joins, and the joined
entities get an active, empty version, so the lookup fills their registry defaults
without another read. ``PrivateRedis`` is a redis-server of our own that can be
stopped, frozen and restarted; the shared server at 6379 is never touched that way.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

from rankops.features import registry
from rankops.features.online.base import OnlineStore
from rankops.features.online.redis import RedisConfig, RedisStore, make_redis


def redis_client(url: str, timeout_s: float = 0.05) -> redis.Redis:
    """A bare client (the floor's MGET), configured like the store's: short timeouts, no retries."""
    return make_redis(RedisConfig(url=url, socket_timeout_ms=max(1, int(timeout_s * 1000))))


def redis_store(url: str, prefix: str, timeout_ms: int, recheck_seconds: float = 1.0, **settings: Any) -> RedisStore:
    """The production Redis backend on ``url`` under ``prefix`` (``settings``: more of its config)."""
    cfg = RedisConfig(url=url, key_prefix=prefix, socket_timeout_ms=timeout_ms, **settings)
    return RedisStore(make_redis(cfg), cfg, recheck_seconds=recheck_seconds)


def seed_items(store: OnlineStore, items: list[str], values: np.ndarray, version: str) -> None:
    """Items without joins, written as materialization writes them (Redis: one hash), plus empty
    active versions of the joined entities."""
    from rankops.features.materialize import Rows, write_version

    write_version(store, "item", version, Rows(items, np.asarray(values, dtype=np.float64), []), 20_000)
    for entity in registry.joined_entities("item"):
        store.activate(entity, version, registry.stored_names(entity), [])


class PrivateRedis:
    """A redis-server of our own on a free port (never the shared one): stoppable, pausable,
    and restarted with its data (append-only file), as a real Redis restart would be."""

    def __init__(self, folder: Path, binary: str = "redis-server") -> None:
        self.folder = folder
        self.binary = binary
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(self.folder),
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server cannot shut down
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (reads time out)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
