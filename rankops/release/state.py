"""The release state: which versions serve, in which mode, and its transitions.

Locally the server reads one small JSON document under ``RANKOPS_HOME/release``
(``rankops release ...`` writes it atomically: a temporary file, fsync, rename, so
a reader never sees half of it). The transitions are pure functions from one
state to the next; :mod:`rankops.release.local` applies them to the document and
to the MLflow aliases (``champion``, ``challenger``, ``previous``).

Modes: ``off`` (champion only), ``shadow`` (the challenger scores a copy of every
request off the request path), ``canary`` (a sticky share of users is served by
the challenger). ``promote`` is the blue/green switch: challenger -> champion, the
old champion -> previous, still loaded so ``rollback`` is instant.

``baseline`` is the serving evidence as it stood when the current step was applied
(the server's cumulative request counters, see :mod:`rankops.release.local`): every
check of a step is judged on what happened since, never on an earlier step's or an
earlier challenger's traffic. A transition clears it; applying the step records it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rankops.errors import ReleaseError

MODES = ("off", "shadow", "canary")
HISTORY = 50
STATE_FILE = "state.json"


@dataclass(frozen=True)
class ReleaseState:
    champion: str | None = None
    challenger: str | None = None
    previous: str | None = None
    mode: str = "off"
    canary_share: float = 0.0
    updated: float = 0.0
    history: tuple[dict[str, Any], ...] = field(default=())
    baseline: dict[str, Any] | None = None  # the evidence counters when this step began

    def aliases(self) -> dict[str, str | None]:
        return {"champion": self.champion, "challenger": self.challenger, "previous": self.previous}

    def to_json(self) -> str:
        doc = asdict(self)
        doc["history"] = list(self.history)
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_document(cls, doc: Any, source: str = "release state") -> ReleaseState:
        if not isinstance(doc, dict):
            raise ReleaseError(f"{source} must be a JSON object")
        unknown = set(doc) - set(cls.__dataclass_fields__)
        if unknown:
            raise ReleaseError(f"{source} has unknown field(s) {sorted(unknown)}")
        for key in ("champion", "challenger", "previous"):
            if doc.get(key) is not None and not isinstance(doc[key], str):
                raise ReleaseError(f"{source}: {key} must be a version string or null")
        mode = doc.get("mode", "off")
        if mode not in MODES:
            raise ReleaseError(f"{source}: mode must be one of {', '.join(MODES)}, got {mode!r}")
        share = doc.get("canary_share", 0.0)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
            raise ReleaseError(f"{source}: canary_share must be a number in [0, 1], got {share!r}")
        if mode != "off" and not doc.get("challenger"):
            raise ReleaseError(f"{source}: mode {mode!r} needs a challenger version")
        history = doc.get("history", [])
        if not isinstance(history, list):
            raise ReleaseError(f"{source}: history must be a list")
        baseline = doc.get("baseline")
        if baseline is not None and not isinstance(baseline, dict):
            raise ReleaseError(f"{source}: baseline must be an object or null")
        return cls(
            doc.get("champion"),
            doc.get("challenger"),
            doc.get("previous"),
            mode,
            float(share),
            float(doc.get("updated", 0.0)),
            tuple(history),
            baseline,
        )


def state_path(home: Path) -> Path:
    return home / "release" / STATE_FILE


def read_state(path: Path) -> ReleaseState | None:
    """The state at ``path``, ``None`` if there is none yet; a malformed file is an error naming it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReleaseError(f"release state {path} is not valid JSON: {err}") from None
    return ReleaseState.from_document(doc, f"release state {path}")


def write_state(path: Path, state: ReleaseState) -> None:
    """Atomic replace: readers see the old document or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(state.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _record(state: ReleaseState, action: str, now: float, **changes: Any) -> ReleaseState:
    new = replace(state, updated=now, baseline=None, **changes)
    entry = {"at": now, "action": action, **new.aliases(), "mode": new.mode, "canary_share": new.canary_share}
    return replace(new, history=(*state.history, entry)[-HISTORY:])


def first_release(state: ReleaseState, version: str, now: float | None = None) -> ReleaseState:
    """The very first champion: there is nothing to shadow or canary against (the gate's
    absolute floor decided). Releasing the current champion again changes nothing."""
    if state.champion is not None and state.champion != version:
        raise ReleaseError(f"version {state.champion} already serves; release {version} through shadow and canary")
    if state.champion == version:
        return state
    return _record(
        state,
        "first_release",
        now if now is not None else time.time(),
        champion=version,
        challenger=None,
        mode="off",
        canary_share=0.0,
    )


def start_shadow(state: ReleaseState, version: str, now: float) -> ReleaseState:
    if state.champion is None:
        raise ReleaseError("there is no champion to compare with; train one with `rankops train --alias champion`")
    if version == state.champion:
        raise ReleaseError(f"version {version} is already the champion; shadow a newer version")
    if state.mode == "canary" and state.challenger != version:
        raise ReleaseError(
            f"a canary of version {state.challenger} is running; promote or roll it back before shadowing {version}"
        )
    return _record(state, "shadow", now, challenger=version, mode="shadow", canary_share=0.0)


def set_canary(state: ReleaseState, share: float, now: float) -> ReleaseState:
    if state.challenger is None:
        raise ReleaseError("there is no challenger; start with `rankops release shadow --version V`")
    if not 0.0 < share <= 1.0:
        raise ReleaseError(f"canary share must be in (0, 1], got {share}")
    return _record(state, "canary", now, mode="canary", canary_share=float(share))


def next_canary_share(state: ReleaseState, steps: list[float]) -> float:
    """The first configured step above the current share."""
    current = state.canary_share if state.mode == "canary" else 0.0
    for step in steps:
        if step > current + 1e-12:
            return step
    raise ReleaseError(f"the canary already serves {current:.0%} of users; run `rankops release promote`")


def promote(state: ReleaseState, now: float) -> ReleaseState:
    """Blue/green: the challenger becomes champion at once; the old champion stays as ``previous``."""
    if state.challenger is None:
        raise ReleaseError("there is no challenger to promote; start with `rankops release shadow --version V`")
    return _record(
        state,
        "promote",
        now,
        champion=state.challenger,
        previous=state.champion,
        challenger=None,
        mode="off",
        canary_share=0.0,
    )


def rollback(state: ReleaseState, now: float) -> tuple[ReleaseState, str]:
    """Undo the last step: drop a running shadow/canary, else restore ``previous``. Returns the version taken out."""
    if state.challenger is not None and state.mode in ("shadow", "canary"):
        return _record(state, "rollback", now, challenger=None, mode="off", canary_share=0.0), state.challenger
    if state.previous is not None and state.champion is not None:
        removed = state.champion
        return _record(state, "rollback", now, champion=state.previous, previous=None), removed
    raise ReleaseError("nothing to roll back: no shadow or canary is running and no previous champion is kept")
