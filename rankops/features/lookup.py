"""Online feature lookup for serving: one batched read per store, defaults filled.

Built once at server start (stores opened, defaults and column positions
resolved); ``fetch`` is the per-request hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rankops.errors import StoreError
from rankops.features import registry
from rankops.features.online.base import OnlineStore, open_store
from rankops.features.online.packing import unpack_rows

if TYPE_CHECKING:
    from rankops.config import Settings


@dataclass
class Fetched:
    columns: dict[str, np.ndarray]
    found: np.ndarray  # per candidate: all its entities were found


class FeatureLookup:
    def __init__(self, stores: dict[str, OnlineStore]) -> None:
        self.stores = stores
        self._defaults = {e: np.array([f.default for f in registry.stored_features(e)]) for e in stores}

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureLookup:
        return cls({e: open_store(settings, e) for e in registry.stored_entities()})

    def fetch(self, entity_keys: dict[str, list[str]]) -> Fetched:
        """``{"item": [ids...]}`` -> stored feature columns (registry defaults where missing)."""
        columns: dict[str, np.ndarray] = {}
        found: np.ndarray | None = None
        for entity, keys in entity_keys.items():
            store = self.stores[entity]
            active = store.active_version(entity)
            names = [f.name for f in registry.stored_features(entity)]
            if active is None:
                raise StoreError(f"no materialized features for {entity!r}; run `rankops features materialize`")
            if active[1] != names:
                raise StoreError(
                    f"online {entity!r} features {active[1]} do not match the registry {names}; "
                    "re-run `rankops features materialize`"
                )
            matrix, hit = unpack_rows(store.read(entity, keys), len(names), self._defaults[entity])
            columns.update({n: matrix[:, i] for i, n in enumerate(names)})
            found = hit if found is None else found & hit
        return Fetched(columns, found if found is not None else np.zeros(0, dtype=bool))

    def fetch_items(self, item_ids: list[str]) -> Fetched:
        """Every stored feature a model needs for these candidate items (the serving entry point)."""
        return self.fetch({"item": item_ids})

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
