"""The off-policy gate: would the challenger lose clicks online? Decided before any user sees it.

Runs after the offline gate passed (pipeline state ``OffPolicy``, between ``Gate`` and the
shadow). It re-scores the feedback log's randomised answers (``gate.offpolicy_policies``,
default the exploration and uniform slices, over the last ``gate.offpolicy_days``) with the
challenger and the champion, and estimates the challenger's lift in clicks per request over
the first ``gate.offpolicy_positions`` positions with a paired bootstrap interval
(:func:`rankops.ope.lift.compare`). A challenger the explore slice does not cover -- it ranks first
items the champion's top ``exploration.top_k`` never holds, so no explore answer shows them there --
is judged on the uniform slice alone, which covers every ranking (:func:`compare`). Three outcomes:

* ``stop`` -- every judged position is covered and either the sample is full (effective sample size
  >= ``estimators.MIN_ESS`` everywhere), the lift's lower bound is below the allowed drop
  (``-gate.offpolicy_max_drop_relative`` x the champion's clicks) and the estimate is decisive (the
  whole interval below 0, or narrow enough to resolve the allowed drop: at most twice as wide); or
  the sample is thin but not below ``MIN_ESS_CLEAR`` and the *whole* interval is below the allowed
  drop. The release ends on the reject path, nothing is registered.
* ``inconclusive`` -- no champion, fewer than ``gate.offpolicy_min_requests`` logged answers,
  a model reading a feature the log lacks, a position the logging policy does not cover, a sample
  too thin for the interval it gave, or a lower bound below the allowed drop from an interval too
  wide to tell (it also holds 0): the shadow and canary judge it, as before this gate existed.
  Weak evidence never stops a release.
* ``pass`` -- otherwise.

The decision, with the estimate, goes into the evaluation's gate record (``offpolicy``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from rankops import registry
from rankops.errors import DataError
from rankops.ope import feedback_eval, lift

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake

# per position, with every position covered: an interval wholly below the allowed drop may stop a
# release from this effective sample size on (coverage measured in docs/ope.md; MIN_ESS for the rest)
MIN_ESS_CLEAR = 30.0


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
    """``(decision, reasons)`` from a challenger (``a``) vs champion (``b``) comparison.

    Support says what the interval may be used for. A position the logging policy does not cover
    (``support.uncovered_positions``) biases the estimate whatever its interval: inconclusive. An
    effective sample size below ``estimators.MIN_ESS`` but at least ``MIN_ESS_CLEAR`` at every
    judged position leaves an interval that still covered the true lift in >= 90% of measured logs
    (docs/ope.md), so it may stop a release only when *all* of it is below the allowed drop;
    thinner than that, inconclusive. With full support, the rule in the module docstring."""
    g = settings.gate
    champion = float(comparison["b"]["value"])
    low, high = comparison["lift_ci95"]
    allowed = g.offpolicy_max_drop_relative * champion
    support = comparison["support"]
    estimate = (
        f"challenger {comparison['a']['value']:.4f} vs champion {champion:.4f} clicks/request, lift "
        f"{comparison['lift']:+.4f} [{low:+.4f}, {high:+.4f}] over {comparison['requests']} logged requests"
    )
    if comparison["warnings"]:
        shown = "; ".join(comparison["warnings"][:3])
        if not support["uncovered_positions"] and support["min_ess"] >= MIN_ESS_CLEAR and high < -allowed:
            return "stop", [
                f"{estimate}: the whole interval is below the allowed drop of -{allowed:.4f} (effective sample "
                f"size at least {support['min_ess']:.0f} per position, >= {MIN_ESS_CLEAR:.0f}: {shown})"
            ]
        return "inconclusive", [f"too little support to judge ({estimate}): {shown}"]
    if low < -allowed and (high < 0 or high - low <= 2 * allowed):
        return "stop", [f"{estimate}: the lower bound is below the allowed drop of -{allowed:.4f}"]
    if low < -allowed:
        return "inconclusive", [
            f"{estimate}: the interval is too wide to resolve the allowed drop of -{allowed:.4f} and holds 0"
        ]
    return "pass", [f"{estimate}: the lower bound is within the allowed drop of -{allowed:.4f}"]


def compare(
    slates: feedback_eval.LoggedSlates, challenger: np.ndarray, champion: np.ndarray, positions: int, n_boot: int
) -> dict[str, Any]:
    """The lift on every logged randomised answer; if the explore answers leave the challenger's
    rankings uncovered (it ranks first items the champion's top ``exploration.top_k`` never holds,
    so the explore slice never shows them there), on the uniform slice alone, which covers every
    ranking by construction (each item at each position with ``1/n``). ``judged_on`` says which."""
    table = slates.table("click")
    uniform = (slates.rows["policy"] == "uniform").to_numpy()
    if uniform.all():
        return {**lift.compare(table, challenger, champion, positions, n_boot, covered=True), "judged_on": ["uniform"]}
    comparison = lift.compare(table, challenger, champion, positions, n_boot)
    judged = sorted(slates.rows["policy"].unique())
    if not comparison["support"]["uncovered_positions"] or not uniform.any():
        return {**comparison, "judged_on": judged}
    pooled = {k: comparison[k] for k in ("lift", "lift_ci95", "requests", "support")}
    sub = table.filter(pa.array(uniform))
    on_uniform = lift.compare(sub, challenger[uniform], champion[uniform], positions, n_boot, covered=True)
    return {**on_uniform, "judged_on": ["uniform"], "all_randomised": {**pooled, "judged_on": judged}}


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
            comparison = compare(slates, challenger, champion_scores, g.offpolicy_positions, n_boot)
            decision, reasons = decide(comparison, settings)
            doc.update(decision=decision, reasons=reasons, estimate=comparison, logged_answers=slates.policies)
    doc["stop"] = doc["decision"] == "stop"
    gate_uri = evaluation.get("gate_uri")
    if gate_uri:  # the decision joins the offline gate's record
        record = lake.read_json(gate_uri)
        lake.write_json(gate_uri, {**record, "offpolicy": doc})
    return doc
