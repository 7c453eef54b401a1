"""Online feature lookup for serving: candidates' features from every entity, with
one batched read per store and per level, defaults filled.

``fetch_items`` reads the items (one round trip to the item store). An item value
written by today's ``materialize`` carries its seller's and category's values too
(:mod:`rankops.features.inline`), so that one read is all. A version written before
(only the item's own values and the joined keys) still serves: the joined entities
are then read with one more batched read per store.
Built once at server start (stores opened, defaults resolved); ``fetch_items`` is
the per-request hot path. Any store failure or timeout surfaces as ``StoreError``.

The server passes a ``deadline`` (``time.perf_counter()`` seconds): a store call is
only started while the remaining budget covers the store's worst case (its
``worst_call_s``: connect + read timeout, one attempt), otherwise it is skipped with
:class:`BudgetExhausted`. With ``partial=True`` a failed or skipped read of a
*joined* entity (seller, category) does not fail the whole lookup: its features get
the registry's defaults and are reported in ``Fetched.unavailable``, so the server
can still answer with a level that does not read them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rankops.errors import StoreError
from rankops.features import inline, registry
from rankops.features.online.base import ActiveVersion, OnlineStore
from rankops.features.online.factory import open_stores
from rankops.features.online.packing import unpack_rows

if TYPE_CHECKING:
    from rankops.config import Settings

ROOT = "item"


class BudgetExhausted(StoreError):
    """A store read was skipped: the request's latency budget could not cover it."""


@dataclass
class Fetched:
    columns: dict[str, np.ndarray]
    found: np.ndarray  # per candidate: its item and every joined entity read were found
    unavailable: frozenset[str] = frozenset()  # features holding defaults because their store failed
    problems: list[str] = field(default_factory=list)  # why (partial reads only)
    joins: dict[str, list[str | None]] = field(default_factory=dict)  # joined entity -> each candidate's key


@dataclass
class _Decoded:
    matrix: np.ndarray
    found: np.ndarray
    joins: list[list[str | None]]
    names: list[str]  # the entity's own features: the matrix's first columns
    inlined: bool = False  # the rest of the matrix: its joined entities (rankops.features.inline)
    active_joins: list[str] = field(default_factory=list)  # the joined entities of the version decoded


class FeatureLookup:
    def __init__(self, stores: Mapping[str, OnlineStore]) -> None:
        self.stores = dict(stores)
        self._names = {e: registry.stored_names(e) for e in self.stores}
        self._defaults = {e: np.array([f.default for f in registry.stored_features(e)]) for e in self.stores}
        self._joined = {e: [j for j in registry.joined_entities(e) if j in self.stores] for e in self.stores}
        # Joined entities this lookup has no store for (a partial set-up): their registry defaults.
        self._absent = [e for e in registry.joined_entities(ROOT) if e not in self.stores]
        absent = [f for e in self._absent for f in registry.stored_features(e)]
        self._absent_names = [f.name for f in absent]
        self._absent_defaults = np.array([f.default for f in absent], dtype=np.float64)
        self._wide = {e: inline.layout(e) for e in self.stores if registry.joined_entities(e)}
        self._wide_defaults = {e: inline.defaults(e) for e in self._wide}

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureLookup:
        return cls(open_stores(settings, registry.stored_entities()))

    def _active(self, entity: str) -> ActiveVersion:
        active = self.stores[entity].active_version(entity)
        if active is None:
            raise StoreError(f"no materialized features for {entity!r}; run `rankops features materialize`")
        if active.columns != self._names[entity] and active.columns != self._wide.get(entity):
            raise StoreError(
                f"online {entity!r} features {active.columns} do not match the registry {self._names[entity]}; "
                "re-run `rankops features materialize`"
            )
        return active

    @staticmethod
    def _within(deadline: float | None, store: OnlineStore, entities: Mapping[str, list[str]]) -> None:
        """Raise :class:`BudgetExhausted` unless the time left before ``deadline`` covers one call to ``store``."""
        if deadline is None:
            return
        remaining = deadline - time.perf_counter()
        need = store.worst_call_s
        if remaining <= 0 or remaining < need:
            raise BudgetExhausted(
                f"{store.name} read of {', '.join(entities)} skipped: "
                f"{max(remaining, 0.0) * 1000:.0f} ms of the latency budget left, a read may take {need * 1000:.0f} ms"
            )

    def _read(
        self,
        requests: Mapping[str, list[str]],
        follow: bool = True,
        deadline: float | None = None,
        failed: dict[str, str] | None = None,
        with_keys: bool = False,
    ) -> dict[str, _Decoded]:
        """Read several entities, one ``read_many`` per distinct store, and decode them. With ``failed``
        a store's failure is recorded there per entity (and its entities left out) instead of raised."""
        groups: dict[int, dict[str, list[str]]] = {}
        for entity, keys in requests.items():
            groups.setdefault(id(self.stores[entity]), {})[entity] = keys
        out: dict[str, _Decoded] = {}
        for group in groups.values():
            try:
                out.update(self._read_group(group, follow, deadline, with_keys))
            except StoreError as err:
                if failed is None:
                    raise
                failed.update(dict.fromkeys(group, str(err)))
        return out

    def _read_group(
        self, group: dict[str, list[str]], follow: bool, deadline: float | None, with_keys: bool = False
    ) -> dict[str, _Decoded]:
        """The entities of one store: their live versions, one ``read_many``, decoded. ``with_keys``: decode
        the joined entities' keys even when their values are inlined (the streaming reads need them)."""
        out: dict[str, _Decoded] = {}
        store = self.stores[next(iter(group))]
        self._within(deadline, store, group)
        actives = {e: self._active(e) for e in group}
        self._within(deadline, store, group)
        raw = store.read_many(group)
        for entity, keys in group.items():
            payloads = raw.get(entity)
            if payloads is None or len(payloads) != len(keys):
                raise StoreError(f"{store.kind} store returned {len(payloads or [])} values for {len(keys)} keys")
            active = actives[entity]
            wide = active.columns != self._names[entity]  # the joined entities' values are inlined
            try:
                matrix, found, joins = unpack_rows(
                    payloads,
                    len(active.columns),
                    self._wide_defaults[entity] if wide else self._defaults[entity],
                    active.version,
                    len(active.joins) if follow and (with_keys or not wide) else 0,
                )
            except (ValueError, UnicodeDecodeError) as err:
                raise StoreError(f"{store.kind} store returned undecodable values for {entity!r}: {err}") from err
            out[entity] = _Decoded(matrix, found, joins, self._names[entity], wide, active.joins)
        return out

    def fetch(self, entity_keys: Mapping[str, list[str]]) -> Fetched:
        """``{"seller": [ids...]}`` -> that entity's stored columns (no joins followed)."""
        columns: dict[str, np.ndarray] = {}
        found: np.ndarray | None = None
        for decoded in self._read(entity_keys, follow=False).values():
            columns.update({n: decoded.matrix[:, i] for i, n in enumerate(decoded.names)})
            found = decoded.found if found is None else found & decoded.found
        return Fetched(columns, found if found is not None else np.zeros(0, dtype=bool))

    def fetch_items(
        self, item_ids: list[str], deadline: float | None = None, partial: bool = False, join_keys: bool = False
    ) -> Fetched:
        """Every stored feature a model needs for these candidate items (the serving entry point):
        the items' own features and those of their seller and category. ``deadline`` and ``partial``:
        see the module docstring (the items' own read failing always raises). ``join_keys``: also
        return each candidate's seller and category keys (``Fetched.joins``), for the streaming reads."""
        items = self._read({ROOT: list(item_ids)}, deadline=deadline, with_keys=join_keys)[ROOT]
        active_joins = items.active_joins  # of the version these values were decoded with
        keys_of = {e: items.joins[i] for i, e in enumerate(active_joins) if i < len(items.joins)}
        if items.inlined:
            columns, joined_found = inline.split(ROOT, items.matrix)
            return Fetched(columns, items.found & joined_found, joins=keys_of)
        columns = {n: items.matrix[:, i] for i, n in enumerate(items.names)}
        if self._absent_names:  # one block of defaults for them all, a column view each
            block = np.tile(self._absent_defaults, (len(item_ids), 1))
            columns.update({name: block[:, i] for i, name in enumerate(self._absent_names)})
        found = items.found.copy()
        joined = self._joined.get(ROOT, [])
        if not joined:
            return Fetched(columns, found, joins=keys_of)
        requests: dict[str, list[str]] = {}
        positions: dict[str, list[int]] = {}
        for entity in joined:
            keys = items.joins[active_joins.index(entity)] if entity in active_joins else [None] * len(item_ids)
            unique = list(dict.fromkeys(k for k in keys if k is not None))
            index = {k: i for i, k in enumerate(unique)}
            requests[entity] = unique
            positions[entity] = [index[k] if k is not None else -1 for k in keys]
        failed: dict[str, str] | None = {} if partial else None
        for entity, decoded in self._read(requests, deadline=deadline, failed=failed).items():
            pos = np.asarray(positions[entity], dtype=np.int64)
            known = pos >= 0
            matrix = np.tile(self._defaults[entity], (len(pos), 1))
            matrix[known] = decoded.matrix[pos[known]]
            hit = np.zeros(len(pos), dtype=bool)
            hit[known] = decoded.found[pos[known]]
            columns.update({n: matrix[:, i] for i, n in enumerate(decoded.names)})
            found &= hit
        if not failed:
            return Fetched(columns, found, joins=keys_of)
        unavailable: set[str] = set()
        for entity in failed:
            names = self._names[entity]
            columns.update({n: np.full(len(item_ids), self._defaults[entity][i]) for i, n in enumerate(names)})
            unavailable.update(names)
        problems = list(dict.fromkeys(failed.values()))
        return Fetched(columns, found, frozenset(unavailable), problems, keys_of)

    def close(self) -> None:
        for store in {id(s): s for s in self.stores.values()}.values():
            store.close()
