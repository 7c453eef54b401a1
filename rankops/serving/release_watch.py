"""Pick up release changes without a restart, off the request path.

A daemon thread looks at the release state file every ``serving.release_recheck_ms``
(one ``stat``); when it changed it reads the document, loads any model version
not loaded yet, and swaps the ranker's routing in one assignment. If anything
fails (a malformed document, a version that cannot be loaded) the server keeps
serving the routing it has, counts the error, and does not retry until the file
changes again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rankops.errors import RankopsError
from rankops.release.state import read_state
from rankops.serving.routing import Loader, build_routing

if TYPE_CHECKING:
    from rankops.serving.core import Ranker
    from rankops.serving.model import LoadedModel

log = logging.getLogger(__name__)
Signature = tuple[int, int, int] | None


def signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class ReleaseWatcher:
    def __init__(
        self,
        path: Path,
        ranker: Ranker,
        loaded: dict[str, LoadedModel],
        load: Loader,
        salt_base: str,
        interval_s: float = 0.5,
        on_switch: Callable[[], None] | None = None,
        seen: Signature | Literal["now"] = "now",
    ) -> None:
        self.path = path
        self.ranker = ranker
        self.loaded = loaded
        self.load = load
        self.salt_base = salt_base
        self.interval_s = interval_s
        self.on_switch = on_switch
        # the file's signature when the initial routing was read: a change made while models were
        # loading is still picked up by the first check
        self.seen: Signature = signature(path) if seen == "now" else seen
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reloads = {o: ranker.metrics.release_reloads.labels(o) for o in ("ok", "error")}

    def check_now(self) -> bool:
        """Reload if the state file changed; True if the routing was switched."""
        current = signature(self.path)
        if current == self.seen:
            return False
        self.seen = current
        try:
            state = read_state(self.path)
            if state is None:
                return False  # the file went away: keep serving what we have
            routing = build_routing(state, self.loaded, self.load, self.salt_base)
        except (RankopsError, OSError) as err:
            self.last_error = str(err)
            self._reloads["error"].inc()
            log.error("release state %s not applied, still serving the previous routing: %s", self.path, err)
            return False
        self.ranker.set_routing(routing)
        self.last_error = None
        self._reloads["ok"].inc()
        log.warning("release switched: %s", routing.describe())
        if self.on_switch is not None:
            self.on_switch()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check_now()
            except Exception:  # the watcher must outlive any surprise; the request path is unaffected
                log.exception("release watcher error")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rankops-release-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
