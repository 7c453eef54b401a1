"""The writer lease a materialization holds on an entity while it writes a version.

Two materializations of one entity must never write the same key slot, so the first takes a
lock naming its version. A lock with a long fixed expiry (an hour, as before) turns a writer
killed with ``kill -9`` into an hour in which nobody can materialize. A *lease* is short
(``writer_lease_seconds`` of the store's settings) and renewed while its holder writes: a dead
writer blocks the next run for at most that long, a live one keeps it as long as it makes
progress. A renewal also fences: when the lease lapsed (no write for the lease's length) or
another version holds it, the writer stops with an error instead of writing a slot that may by
now be someone else's.

Renewals cost one round trip per fifth of the lease per entity, not one per batch.
"""

from __future__ import annotations

import time

LEASE_SECONDS = 300  # default: how long a dead writer blocks the next materialization of its entity


class LeaseClock:
    """When this process last took or renewed each (entity, version) lease it writes under."""

    def __init__(self, lease_s: int) -> None:
        self.lease_s = lease_s
        self.renew_after_s = lease_s / 5  # well inside the lease, one round trip per fifth of it
        self._renewed: dict[tuple[str, str], float] = {}

    def held(self, entity: str, version: str) -> None:
        """The lease was just taken or renewed."""
        self._renewed[(entity, version)] = time.monotonic()

    def due(self, entity: str, version: str) -> bool:
        """Whether the next write should renew the lease first (never for writes this process
        makes without a lease: the streaming job's into the live version)."""
        last = self._renewed.get((entity, version))
        return last is not None and time.monotonic() - last >= self.renew_after_s

    def forget(self, entity: str, version: str) -> None:
        self._renewed.pop((entity, version), None)

    def lapsed(self, store: str, entity: str, version: str, holder: str | None) -> str:
        """The error a writer whose lease was lost stops with."""
        who = f"version {holder} now holds it" if holder else "it lapsed"
        return (
            f"the {store} writer lease on {entity!r} for version {version} was lost ({who}; no write for "
            f"{self.lease_s} s?): this materialization stops so it cannot overwrite another; run it again"
        )

    def held_by_other(self, store: str, entity: str, holder: str | None) -> str:
        """The error a second materialization of an entity is refused with."""
        by = f" (version {holder})" if holder else ""
        return (
            f"another materialization{by} is writing {entity!r} to {store}; retry when it finishes "
            f"(a writer that died frees it within {self.lease_s} s)"
        )
