"""The off-policy gate: would the challenger lose clicks online? Decided before any user sees it.

Runs after the offline gate passed (pipeline state ``OffPolicy``, between ``Gate`` and the
shadow). It re-scores the feedback log's randomised answers (``gate.offpolicy_policies``,
default the exploration and uniform slices, over the last ``gate.offpolicy_days``) with the
challenger and the champion, and estimates the challenger's lift in clicks per request over
the first ``gate.offpolicy_positions`` positions with a paired bootstrap interval
(:func:`rankops.ope.lift.compare`). Three outcomes:

* ``stop`` -- the lift's lower bound is below the allowed drop (``-gate.offpolicy_max_drop_relative``
  x the champion's clicks) and the estimate is decisive: the whole interval is below 0 (clearly
  worse), or it is narrow enough to resolve the allowed drop (at most twice as wide). The release
  ends on the reject path, nothing is registered.
* ``inconclusive`` -- no champion, fewer than ``gate.offpolicy_min_requests`` logged answers,
  a model reading a feature the log lacks, too little support (the estimators' warnings), or a
  lower bound below the allowed drop from an interval too wide to tell (it also holds 0): the
  shadow and canary judge it, as before this gate existed. Weak evidence never stops a release.
* ``pass`` -- otherwise.

The decision, with the estimate, goes into the evaluation's gate record (``offpolicy``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rankops import registry
from rankops.errors import DataError
from rankops.ope import feedback_eval, lift

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake


def _thresholds(settings: Settings) -> dict[str, Any]:
    g = settings.gate
    return {
        "max_drop_relative": g.offpolicy_max_drop_relative,
        "min_requests": g.offpolicy_min_requests,
        "positions": g.offpolicy_positions,
        "policies": list(g.offpolicy_policies),
        "days": g.offpolicy_days,
    }


def decide(comparison: dict[str, Any], settings: Settings) -> tuple[str, list[str]]:
    """``(decision, reasons)`` from a challenger (``a``) vs champion (``b``) comparison."""
    g = settings.gate
    champion = float(comparison["b"]["value"])
    low, high = comparison["lift_ci95"]
    allowed = g.offpolicy_max_drop_relative * champion
    estimate = (
        f"challenger {comparison['a']['value']:.4f} vs champion {champion:.4f} clicks/request, lift "
        f"{comparison['lift']:+.4f} [{low:+.4f}, {high:+.4f}] over {comparison['requests']} logged requests"
    )
    if comparison["warnings"]:
        shown = "; ".join(comparison["warnings"][:3])
        return "inconclusive", [f"too little support to judge ({estimate}): {shown}"]
    if low < -allowed and (high < 0 or high - low <= 2 * allowed):
        return "stop", [f"{estimate}: the lower bound is below the allowed drop of -{allowed:.4f}"]
    if low < -allowed:
        return "inconclusive", [
            f"{estimate}: the interval is too wide to resolve the allowed drop of -{allowed:.4f} and holds 0"
        ]
    return "pass", [f"{estimate}: the lower bound is within the allowed drop of -{allowed:.4f}"]


def run(
    settings: Settings,
    lake: Lake,
    evaluation: dict[str, Any],
    now: datetime,
    n_boot: int = 500,
    read: feedback_eval.FeedbackReader | None = None,
) -> dict[str, Any]:
    """The off-policy decision for the evaluation's challenger, recorded in its gate record.
    ``read``: where the feedback comes from (default the lake's log; in AWS the data capture)."""
    version = str(evaluation["version"])
    champion = evaluation.get("champion_version")
    champion = None if champion is None else str(champion)
    doc: dict[str, Any] = {
        "version": version,
        "champion_version": champion,
        "decided_at": now.isoformat(),
        "thresholds": _thresholds(settings),
        "estimate": None,
    }
    g = settings.gate
    if champion is None or champion == version:
        doc.update(decision="inconclusive", reasons=["no other champion to compare with: the shadow and canary judge"])
    else:
        try:
            since, policies = now - timedelta(days=g.offpolicy_days), list(g.offpolicy_policies)
            slates = feedback_eval.load(lake, since, now, policies, read)
            if slates.requests < g.offpolicy_min_requests:
                raise DataError(
                    f"{slates.requests} logged answers by {', '.join(g.offpolicy_policies)} in the last "
                    f"{g.offpolicy_days} days; the gate needs {g.offpolicy_min_requests}"
                )
            scores = [
                feedback_eval.score(slates, registry.load_version_booster(settings, v), v) for v in (version, champion)
            ]
        except DataError as err:
            doc.update(decision="inconclusive", reasons=[f"cannot estimate off-policy: {err}"])
        else:
            challenger, champion_scores = scores
            comparison = lift.compare(slates.table("click"), challenger, champion_scores, g.offpolicy_positions, n_boot)
            decision, reasons = decide(comparison, settings)
            doc.update(decision=decision, reasons=reasons, estimate=comparison, logged_answers=slates.policies)
    doc["stop"] = doc["decision"] == "stop"
    gate_uri = evaluation.get("gate_uri")
    if gate_uri:  # the decision joins the offline gate's record
        record = lake.read_json(gate_uri)
        lake.write_json(gate_uri, {**record, "offpolicy": doc})
    return doc
