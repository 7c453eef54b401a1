"""A Redis item store behind the ``OnlineStore`` protocol, for the serving benchmark and tests.

The features area owns the production Redis backend; until it lands on main the
serving benchmark and the Redis fault tests read Redis through this small
implementation of the same protocol (same packed values, one MGET per batch), so
the serving code stays store-agnostic and swapping in the real backend changes
nothing but the constructor. What it does on purpose: a short socket timeout and
**no client retries** (redis-py retries with back-off by default, which would blow
the latency budget during an outage; the server's circuit breaker decides instead).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rankops.errors import StoreError
from rankops.features.online.packing import pack_rows


def redis_client(url: str, timeout_s: float = 0.05) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
    )


class RedisItemStore:
    kind = "redis"

    def __init__(self, client: redis.Redis, prefix: str, recheck_seconds: float = 1.0) -> None:
        self.client = client
        self.prefix = prefix
        self._recheck = recheck_seconds
        self._active: dict[str, tuple[float, tuple[str, list[str]] | None]] = {}

    def _key(self, entity: str, version: str, key: str) -> str:
        return f"{self.prefix}:{entity}:{version}:{key}"

    def write_batch(self, entity: str, version: str, keys: list[str], values: np.ndarray) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, value in zip(keys, pack_rows(values), strict=True):
            pipe.set(self._key(entity, version, key), value)
        pipe.execute()

    def activate(self, entity: str, version: str, columns: list[str]) -> None:
        self.client.set(f"{self.prefix}:{entity}:active", json.dumps({"version": version, "columns": columns}))
        self._active.pop(entity, None)

    def active_version(self, entity: str) -> tuple[str, list[str]] | None:
        cached = self._active.get(entity)
        now = time.monotonic()
        if cached and now - cached[0] < self._recheck:
            return cached[1]
        try:
            raw = self.client.get(f"{self.prefix}:{entity}:active")
        except redis.RedisError as err:
            raise StoreError(f"redis version lookup failed: {err}") from err
        value = None
        if raw is not None:
            doc = json.loads(raw)
            value = (str(doc["version"]), list(doc["columns"]))
        self._active[entity] = (now, value)
        return value

    def read(self, entity: str, keys: list[str]) -> list[bytes | None]:
        active = self.active_version(entity)
        if active is None or not keys:
            return [None] * len(keys)
        try:
            head = f"{self.prefix}:{entity}:{active[0]}:"
            values: list[bytes | None] = self.client.mget([head + k for k in keys])
        except redis.RedisError as err:
            raise StoreError(f"redis read failed: {err}") from err
        return values

    def close(self) -> None:
        self.client.close()


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
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)]  # fmt: skip
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
