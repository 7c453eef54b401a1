"""Why an answer was degraded: a coarse code for the caller, the details for the server's log.

A response's ``fallback`` field (and so data capture and the feedback log) carries only codes
built here from fixed words and registry names, e.g. ``store_unavailable:item;
features_unavailable:champion``: never an exception's text, a URL, a host or a password. The
details (the store's error, which read was skipped, why a model failed to score) go to the
server's log, secrets redacted (:func:`rankops.redaction.redact_text`), at most once per
``LOG_EVERY_S`` for each distinct answer so an outage does not flood the log.

Codes (``<level>`` is ``champion``, ``challenger``, ``previous``, ``fallback`` or ``rule``;
``<entity>`` a stored entity of the feature registry):

* ``store_unavailable:<entity>``: a read of that entity's features failed or was skipped;
* ``features_failed``: stored values could not be used at all (e.g. malformed);
* ``model_missing:<level>``: no such model is loaded;
* ``features_unavailable:<level>``: the level reads a feature whose store failed;
* ``score_failed:<level>``: the level raised or returned non-finite scores;
* ``item_snapshot``: the fallback levels ranked from the server's item snapshot (a store was out).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from rankops.redaction import redact_text

log = logging.getLogger("rankops.serving")
LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class Reason:
    code: str  # safe for the caller
    detail: str  # server log only


def store_unavailable(entities: list[str], detail: str) -> list[Reason]:
    return [Reason(f"store_unavailable:{entity}", detail) for entity in entities]


def features_failed(err: BaseException) -> Reason:
    return Reason("features_failed", f"features failed: {err}")


def model_missing(level: str) -> Reason:
    return Reason(f"model_missing:{level}", f"no {level} model loaded")


def features_unavailable(level: str, features: list[str]) -> Reason:
    return Reason(f"features_unavailable:{level}", f"{level} skipped: {', '.join(sorted(features))} unavailable")


def score_failed(level: str, version: str | None, err: BaseException) -> Reason:
    named = f"{level} model version {version}" if version else level
    return Reason(f"score_failed:{level}", f"{named} failed to score: {err}")


def snapshot_used(covered: int, total: int) -> Reason:
    """Not a failure: the fallback levels ranked from the server's item snapshot."""
    return Reason("item_snapshot", f"fallback levels read the item snapshot ({covered}/{total} candidates)")


def client_text(reasons: list[Reason]) -> str:
    """The ``fallback`` field: the distinct codes, in order."""
    return "; ".join(dict.fromkeys(r.code for r in reasons))


class DetailLog:
    """Logs the details behind each distinct client text, at most once per ``every_s``."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, answered_by: str, reasons: list[Reason]) -> None:
        text = client_text(reasons)
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(text, -self.every_s) < self.every_s:
                return
            self._last[text] = now
        details = "; ".join(dict.fromkeys(r.detail for r in reasons))
        log.warning("answered by %s (%s): %s", answered_by, text, redact_text(details))
