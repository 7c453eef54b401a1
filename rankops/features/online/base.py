"""The online store interface and the factory that picks a backend from config.

Writes go to a *version* (one materialization run); ``activate`` switches readers
to it in one atomic step, so a half-finished materialization is never served and
a failed one leaves the previous version live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from rankops.config import Settings


class OnlineStore(Protocol):
    """What the inference server and the materializer need from a backend."""

    kind: str

    def write_batch(self, entity: str, version: str, keys: list[str], values: np.ndarray) -> None:
        """Store packed rows for ``keys`` under ``version`` (not yet visible to readers)."""

    def activate(self, entity: str, version: str, columns: list[str]) -> None:
        """Atomically make ``version`` the one readers see; older versions may be dropped."""

    def active_version(self, entity: str) -> tuple[str, list[str]] | None:
        """The live version and its column order, or ``None`` if nothing was materialized."""

    def read(self, entity: str, keys: list[str]) -> list[bytes | None]:
        """Packed values of the live version, ``None`` where a key is missing. One round trip."""

    def close(self) -> None: ...


def open_store(settings: Settings, entity: str) -> OnlineStore:
    """The backend configured for ``entity`` (``online_store.routing``, else the default)."""
    kind = settings.online_store.routing.get(entity, settings.online_store.default)
    if kind == "embedded":
        from rankops.features.online.embedded import EmbeddedStore

        return EmbeddedStore(settings.home / "online" / "features.sqlite")
    raise NotImplementedError(f"online store {kind!r} is not available in this build")
