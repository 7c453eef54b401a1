"""The online store interface every backend implements (the factory choosing one by type
name is :mod:`rankops.features.online.factory`).

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
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from rankops.errors import StoreError


class StoreSettings(BaseModel):
    """A backend's settings (``[online_store.<type>]``): frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class OpenOptions:
    """How a store is opened, beyond its own settings. Writers (materialization) get longer
    socket timeouts than the serving path; ``serving_timeout_s`` (the inference server's read
    path) caps every connect and read timeout and makes each call one attempt, so a slow store
    costs at most ``2 * serving_timeout_s`` per call (the store's ``worst_call_s``)."""

    home: Path
    recheck_seconds: float = 1.0
    for_writes: bool = False
    serving_timeout_s: float | None = None


@dataclass(frozen=True)
class ActiveVersion:
    """What a reader needs to decode an entity's values: the version (its tag is in
    every value), the feature order and the joined entities' key order; for a two-slot store, the
    slot, and how Redis stored it (``layout``: ``hash`` or ``keys``, :mod:`rankops.features.online.redis`)."""

    version: str
    columns: list[str]
    joins: list[str]
    slot: str = ""
    layout: str = "keys"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ActiveVersion:
        data = json.loads(text)
        joins, slot, layout = list(data.get("joins", [])), data.get("slot", ""), data.get("layout", "keys")
        return cls(data["version"], list(data["columns"]), joins, slot, layout)


class OnlineStore(Protocol):
    """What the inference server and the materializer need from a backend."""

    kind: str  # the store type name (``embedded``, ``redis``, ``dynamodb``)
    name: str  # how logs and metrics name this store (a wrapper may name its client)
    worst_call_s: float  # on the serving path: the longest one call may take (0: not bounded)

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


def capped(timeout_ms: int, cap_s: float | None) -> float:
    """A configured timeout in seconds, no longer than ``cap_s`` (when given)."""
    return timeout_ms / 1000 if cap_s is None else min(timeout_ms / 1000, cap_s)


def worst_call_s(timeouts_ms: tuple[int, int], cap_s: float) -> float:
    """The longest one serving-path call may take: connect + read timeout, each capped, one attempt."""
    return sum(capped(t, cap_s) for t in timeouts_ms)


def serving_worst_call_s(timeouts_ms: tuple[int, int], options: OpenOptions) -> float:
    """``worst_call_s`` of a store opened with ``options`` (0 off the serving path)."""
    return 0.0 if options.serving_timeout_s is None else worst_call_s(timeouts_ms, options.serving_timeout_s)


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


class SlottedStore(Protocol):
    """A two-slot store (Redis, DynamoDB): writes go to the slot ``_writing`` names for a version."""

    _writing: dict[tuple[str, str], str]

    def _load_active(self, entity: str) -> ActiveVersion | None: ...

    def write_batch(
        self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
    ) -> None: ...


def write_into_live(
    store: SlottedStore, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
) -> None:
    """Upsert values into the *live* version in place: the streaming job's writes
    (:mod:`rankops.features.streaming`), which never switch versions. Same-key writes of
    the same bytes change nothing, which is what makes a replayed micro-batch harmless. ``ttl_s``:
    how long each value lives (the streaming windows' own, not the store's batch TTL)."""
    active = store._load_active(entity)
    if active is None or active.version != version:
        raise StoreError(f"{entity!r} is not live at version {version}; activate it before writing into it")
    store._writing[(entity, version)] = active.slot
    try:
        store.write_batch(entity, version, keys, payloads, ttl_s)
    finally:
        store._writing.pop((entity, version), None)
