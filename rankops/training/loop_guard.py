"""The feedback-loop guard at the gate: what the top k shows may not narrow release after release.

A ranker retrained on the clicks its predecessor caused learns its predecessor's choices, so
each release can show a little less of the catalogue than the last. The gate's per-release rule
(coverage within ``gate.max_coverage_drop_relative`` of the champion on the same holdout) lets a
slow ratchet through: 1.9 % less coverage per retrain passes a 2 % rule every time and loses
9 % over five releases. So the gate also compounds the change of three figures of the top k --
catalogue coverage, long-tail share and new-item share -- over the last
``gate.loop_guard_releases`` releases (this challenger's included) and rejects when any of them
shrank by more than its limit (``gate.loop_guard_max_*_drop``).

Numbers from different holdouts are never compared: each evaluation records the challenger's
*ratio* to the champion it was judged against on that holdout, as a version tag
(:data:`TAG`, with the champion's version). The chain of releases is walked back from the
current champion through those tags; a version evaluated before the tag existed (or the first
champion) ends the chain, so a short history is judged on what it has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rankops.errors import ModelError

if TYPE_CHECKING:
    from collections.abc import Callable

    from rankops.config_sections import GateConfig

TAG = "loop_guard_ratios"  # version tag: JSON {"champion": version, "ratios": {metric: challenger / champion}}
FIGURES = ("coverage", "long_tail_share", "new_item_share")


@dataclass(frozen=True)
class Release:
    """One earlier release in the chain: its version, the champion it replaced, and its ratios."""

    version: str
    replaced: str | None
    ratios: dict[str, float]


def ratios(challenger: dict[str, float], champion: dict[str, float], k: int) -> dict[str, float]:
    """Challenger / champion per guarded figure on one holdout (1.0 when the champion's is 0: a
    figure that was nothing cannot shrink)."""
    out: dict[str, float] = {}
    for figure in FIGURES:
        new, old = float(challenger[f"{figure}@{k}"]), float(champion[f"{figure}@{k}"])
        out[figure] = new / old if old > 0 else 1.0
    return out


def tag_value(champion_version: str, figure_ratios: dict[str, float]) -> str:
    """The version tag a gated challenger carries (what later gates walk back through)."""
    return json.dumps({"champion": champion_version, "ratios": {f: round(r, 6) for f, r in figure_ratios.items()}})


def chain(champion_version: str | None, tags_of: Callable[[str], dict[str, str]], releases: int) -> list[Release]:
    """The up to ``releases`` latest releases before this one, newest first, walked back from
    ``champion_version`` through each version's :data:`TAG` (``tags_of(version)`` -> its tags).
    Ends at a version without the tag, one whose tag cannot be read, or one the registry no longer
    holds (said in the gate record as a shorter chain, never an error: old versions must stay
    gateable)."""
    out: list[Release] = []
    version, seen = champion_version, set()
    while version is not None and len(out) < releases and version not in seen:
        seen.add(version)
        try:
            doc = json.loads(tags_of(version).get(TAG, "null"))
            figure_ratios = {f: float(doc["ratios"][f]) for f in FIGURES}
            replaced = None if doc.get("champion") is None else str(doc["champion"])
        except (TypeError, KeyError, ValueError, ModelError):
            break
        if replaced == version:  # judged against itself: not a release
            break
        out.append(Release(version, replaced, figure_ratios))
        version = replaced
    return out


def limits(cfg: GateConfig) -> dict[str, float]:
    """Largest relative shrink allowed per figure (``gate.loop_guard_max_<figure>_drop``)."""
    return {figure: float(getattr(cfg, f"loop_guard_max_{figure}_drop")) for figure in FIGURES}


def judge(
    now: dict[str, float], earlier: list[Release], cfg: GateConfig, k: int
) -> tuple[list[tuple[str, bool, str]], dict[str, Any]]:
    """``(checks, record)``: one ``(name, passed, reason)`` per guarded figure on the ratio
    compounded over this release and ``earlier`` (at most ``loop_guard_releases - 1`` of them)."""
    used = earlier[: max(cfg.loop_guard_releases - 1, 0)]
    checks: list[tuple[str, bool, str]] = []
    compounded: dict[str, float] = {}
    for figure, max_drop in limits(cfg).items():
        value = now[figure]
        for release in used:
            value *= release.ratios[figure]
        compounded[figure] = round(value, 6)
        passed = value >= 1.0 - max_drop
        span = f"over the last {len(used) + 1} release{'s' if used else ''}"
        verdict = "ok" if passed else f"the top {k} narrowed more than allowed"
        reason = f"{figure}@{k} compounded {span}: {value - 1.0:+.2%} (allowed down to -{max_drop:.2%}): {verdict}"
        checks.append((f"loop_guard_{figure}", passed, reason))
    record = {
        "releases": [{"version": r.version, "replaced": r.replaced, "ratios": r.ratios} for r in used],
        "this_release": {f: round(r, 6) for f, r in now.items()},
        "compounded": compounded,
        "limits": limits(cfg),
    }
    return checks, record
