"""Online stores chosen by type name: ``online_store.default`` and ``online_store.routing``
name a type in :data:`STORE_TYPES`, whose settings are ``[online_store.<type>]`` (each
backend's settings class lives beside it). Clients are created here, never at import.
A new backend is one module with a settings class and a ``connect(settings, options)``
function, plus one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rankops.errors import ConfigError
from rankops.features.online import dynamodb, embedded, redis
from rankops.features.online.base import OnlineStore, OpenOptions

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.config_sections import OnlineStoreConfig

Opener = Callable[[Any, OpenOptions], OnlineStore]

# type name -> (its settings in [online_store], how to open it)
STORE_TYPES: dict[str, tuple[Callable[[OnlineStoreConfig], Any], Opener]] = {
    "embedded": (lambda cfg: cfg.embedded, embedded.connect),
    "redis": (lambda cfg: cfg.redis, redis.connect),
    "dynamodb": (lambda cfg: cfg.dynamodb, dynamodb.connect),
}


def store_kind(settings: Settings, entity: str) -> str:
    """The store type serving ``entity`` (``online_store.routing``, else the default)."""
    return settings.online_store.routing.get(entity, settings.online_store.default)


def open_kind(
    settings: Settings, kind: str, for_writes: bool = False, serving_timeout_s: float | None = None
) -> OnlineStore:
    """A connected store of type ``kind`` (see :class:`OpenOptions` for the two paths)."""
    if kind not in STORE_TYPES:
        raise ConfigError(f"unknown online store {kind!r}; expected {', '.join(STORE_TYPES)}")
    section, connect = STORE_TYPES[kind]
    cfg = settings.online_store
    return connect(section(cfg), OpenOptions(settings.home, cfg.recheck_seconds, for_writes, serving_timeout_s))


def open_store(settings: Settings, entity: str, for_writes: bool = False) -> OnlineStore:
    """The store configured for ``entity``."""
    return open_kind(settings, store_kind(settings, entity), for_writes)


def open_stores(
    settings: Settings, entities: list[str], for_writes: bool = False, serving_timeout_s: float | None = None
) -> dict[str, OnlineStore]:
    """One store per entity, sharing one client per store type (so entities on the same
    backend can be read in one round trip)."""
    by_kind: dict[str, OnlineStore] = {}
    out: dict[str, OnlineStore] = {}
    for entity in entities:
        kind = store_kind(settings, entity)
        if kind not in by_kind:
            by_kind[kind] = open_kind(settings, kind, for_writes, serving_timeout_s)
        out[entity] = by_kind[kind]
    return out
