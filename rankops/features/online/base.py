"""The online store interface and the factory that picks a backend from config.

Writes go to a *version* (one materialization run); ``activate`` switches readers
to it in one atomic step (one row / key / item holds the pointer), so a
half-finished materialization is never served and a failed one leaves the
previous version live. Values are opaque bytes in the shared encoding
(:mod:`rankops.features.online.packing`). Every backend raises ``StoreError`` (and
nothing else) when it cannot answer, within its configured timeouts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

from rankops.errors import ConfigError

if TYPE_CHECKING:
    from rankops.config import Settings


@dataclass(frozen=True)
class ActiveVersion:
    """What a reader needs to decode an entity's values: the version (its tag is in
    every value), the feature order and the joined entities' key order."""

    version: str
    columns: list[str]
    joins: list[str]
    slot: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ActiveVersion:
        data = json.loads(text)
        return cls(data["version"], list(data["columns"]), list(data.get("joins", [])), data.get("slot", ""))


class OnlineStore(Protocol):
    """What the inference server and the materializer need from a backend."""

    kind: str

    def write_batch(self, entity: str, version: str, keys: list[str], payloads: list[bytes]) -> None:
        """Store packed values for ``keys`` under ``version`` (not yet visible to readers)."""

    def activate(self, entity: str, version: str, columns: list[str], joins: list[str]) -> None:
        """Atomically make ``version`` the one readers see; older versions may be dropped."""

    def active_version(self, entity: str) -> ActiveVersion | None:
        """The live version, or ``None`` if nothing was materialized (cached briefly)."""

    def read_many(self, requests: Mapping[str, list[str]]) -> dict[str, list[bytes | None]]:
        """Packed values of the live versions of several entities, ``None`` where a key is
        missing: one batched round trip for the whole request."""

    def abort(self, entity: str, version: str) -> None:
        """Give up a written but never activated version (frees what it holds)."""

    def close(self) -> None: ...


def store_kind(settings: Settings, entity: str) -> str:
    return settings.online_store.routing.get(entity, settings.online_store.default)


def open_store(settings: Settings, entity: str, for_writes: bool = False) -> OnlineStore:
    """The backend configured for ``entity`` (``online_store.routing``, else the default)."""
    return open_kind(settings, store_kind(settings, entity), for_writes)


def open_kind(
    settings: Settings, kind: str, for_writes: bool = False, serving_timeout_s: float | None = None
) -> OnlineStore:
    """A connected backend of ``kind``; clients are created here, never at import.
    Writers get longer socket timeouts than the serving path. ``serving_timeout_s`` (the
    inference server's read path) caps every connect and read timeout and makes each call
    one attempt, so a slow store costs at most ``2 * serving_timeout_s`` per call; the store
    then carries that figure as ``worst_call_s``."""
    cfg = settings.online_store
    if kind == "embedded":
        from rankops.features.online.embedded import EmbeddedStore

        path = cfg.embedded_path or settings.home / "online" / "features.sqlite"
        return EmbeddedStore(path, recheck_seconds=cfg.recheck_seconds)
    if kind == "redis":
        from rankops.features.online.redis import RedisStore, make_redis

        redis_store = RedisStore(
            make_redis(cfg.redis, for_writes, serving_timeout_s), cfg.redis, recheck_seconds=cfg.recheck_seconds
        )
        if serving_timeout_s is not None:
            redis_store.worst_call_s = worst_call_s(
                (cfg.redis.connect_timeout_ms, cfg.redis.socket_timeout_ms), serving_timeout_s
            )
        return redis_store
    if kind == "dynamodb":
        from rankops.features.online.dynamodb import DynamoDBStore, make_dynamodb

        dynamo_store = DynamoDBStore(
            make_dynamodb(cfg.dynamodb, serving_timeout_s),
            cfg.dynamodb,
            recheck_seconds=cfg.recheck_seconds,
            read_rounds=1 if serving_timeout_s is not None else None,
        )
        if serving_timeout_s is not None:
            dynamo_store.worst_call_s = worst_call_s(
                (cfg.dynamodb.connect_timeout_ms, cfg.dynamodb.read_timeout_ms), serving_timeout_s
            )
        return dynamo_store
    raise ConfigError(f"unknown online store {kind!r}; expected embedded, redis or dynamodb")


def capped(timeout_ms: int, cap_s: float | None) -> float:
    """A configured timeout in seconds, no longer than ``cap_s`` (when given)."""
    return timeout_ms / 1000 if cap_s is None else min(timeout_ms / 1000, cap_s)


def worst_call_s(timeouts_ms: tuple[int, int], cap_s: float) -> float:
    """The longest one serving-path call may take: connect + read timeout, each capped, one attempt."""
    return sum(capped(t, cap_s) for t in timeouts_ms)


def open_stores(
    settings: Settings, entities: list[str], for_writes: bool = False, serving_timeout_s: float | None = None
) -> dict[str, OnlineStore]:
    """One store per entity, sharing one client per backend kind (so entities on the
    same backend can be read in one round trip)."""
    by_kind: dict[str, OnlineStore] = {}
    out: dict[str, OnlineStore] = {}
    for entity in entities:
        kind = store_kind(settings, entity)
        if kind not in by_kind:
            by_kind[kind] = open_kind(settings, kind, for_writes, serving_timeout_s)
        out[entity] = by_kind[kind]
    return out


class PointerCache:
    """Per-entity cache of the live version, re-read at most every ``recheck_seconds``:
    readers pick up a new materialization without a restart and without paying a
    round trip per request."""

    def __init__(self, load: Callable[[str], ActiveVersion | None], recheck_seconds: float) -> None:
        self._load = load
        self._recheck = recheck_seconds
        self._cached: dict[str, tuple[float, ActiveVersion | None]] = {}

    def get(self, entity: str) -> ActiveVersion | None:
        now = time.monotonic()
        cached = self._cached.get(entity)
        if cached is not None and now - cached[0] < self._recheck:
            return cached[1]
        value = self._load(entity)
        self._cached[entity] = (now, value)
        return value

    def forget(self, entity: str) -> None:
        self._cached.pop(entity, None)
