"""Which model answers whom: an immutable routing snapshot, swapped whole.

The request path reads ``ranker.routing`` once and uses that snapshot to the end,
so a release switch (by :mod:`rankops.serving.release_watch`) is one reference
assignment: no locks, and no request ever sees half of an old and half of a new
release. Models are loaded before the swap, off the request path, and reused by
version, so a promotion or a rollback to a loaded version is instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rankops.errors import ModelError
from rankops.release.bucketing import release_salt, target_variant
from rankops.release.state import ReleaseState

if TYPE_CHECKING:
    from rankops.serving.model import LoadedModel

ROLES = ("champion", "challenger", "previous")


@dataclass(frozen=True)
class Routing:
    champion: LoadedModel | None
    challenger: LoadedModel | None = None
    previous: LoadedModel | None = None
    mode: str = "off"
    canary_share: float = 0.0
    salt: str = ""

    def route(self, user_id: str, target: str | None = None) -> tuple[str, LoadedModel | None]:
        """(variant, model) for this user; ``target`` forces a variant (pre-traffic checks)."""
        if target is not None:
            return target, getattr(self, target)
        # the same function callers of a SageMaker endpoint use (rankops.release.routing_document)
        canary = self.mode == "canary" and self.challenger is not None
        if canary and target_variant(user_id, self.canary_share, self.salt) == "challenger":
            return "challenger", self.challenger
        return "champion", self.champion

    @property
    def shadow(self) -> LoadedModel | None:
        return self.challenger if self.mode == "shadow" else None

    def describe(self) -> dict[str, Any]:
        return {
            **{role: (m.version if (m := getattr(self, role)) is not None else None) for role in ROLES},
            "mode": self.mode,
            "canary_share": self.canary_share,
        }


Loader = Callable[[str, str], "LoadedModel"]  # (version, role) -> model


def build_routing(state: ReleaseState, loaded: dict[str, LoadedModel], load: Loader, salt_base: str) -> Routing:
    """The routing for ``state``, loading only versions not in ``loaded`` (which is updated in place and
    pruned to what the new routing uses). A champion or challenger that cannot be loaded raises (the
    caller keeps the old routing); a previous one that cannot is dropped: it only serves rollbacks."""
    wanted: dict[str, str | None] = {
        "champion": state.champion,
        "challenger": state.challenger if state.mode != "off" else None,
        "previous": state.previous,
    }
    models: dict[str, LoadedModel | None] = {}
    for role, version in wanted.items():
        if version is None:
            models[role] = None
            continue
        if version not in loaded:
            try:
                loaded[version] = load(version, role)
            except ModelError:
                if role != "previous":
                    raise
                models[role] = None
                continue
        models[role] = loaded[version].as_role(role)
    for version in set(loaded) - {v for v in wanted.values() if v is not None}:
        del loaded[version]
    return Routing(
        models["champion"],
        models["challenger"],
        models["previous"],
        state.mode,
        state.canary_share if state.mode == "canary" else 0.0,
        release_salt(salt_base, state.challenger),
    )
