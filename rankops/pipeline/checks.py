"""Pure decisions of the pipeline's Lambda steps (standard library only: they run in Lambda).

* :func:`feature_readiness`: may training start? The latest feature run passed validation
  and the published features reach the data snapshot within the tightest freshness SLA.
* :func:`gate_outcome`: the evaluation job's recorded gate decision, trimmed to what the
  state machine's Choice and the notifications need (and whether the "challenger" is in
  fact the serving champion, as on a re-run of the same snapshot).
* :func:`offpolicy_outcome`: the off-policy gate job's decision (rankops/ope/gate.py), trimmed
  the same way: stop or go on, why, and the estimate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rankops.errors import DataError


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def feature_readiness(status: dict[str, Any] | None, snapshot: str | None, now: datetime) -> dict[str, Any]:
    """``{"ok": bool, "reasons": [...], ...}``. ``snapshot`` (ISO time) is the data snapshot the
    run trains on; ``None`` or ``"latest"`` means "what is published" (only validation is checked)."""
    if status is None:
        return {"ok": False, "reasons": ["no feature status found: run the feature job (`rankops features build`)"]}
    reasons: list[str] = []
    last = status.get("last_run", {})
    if last.get("status") != "published":
        failed = "; ".join(str(f.get("message", f)) for f in last.get("failures", [])[:3])
        reasons.append(f"the latest feature run {last.get('run_id')} was rejected by validation: {failed}")
    through = status.get("published_through")
    lag_hours = None
    if through is None:
        reasons.append("no features were ever published")
    elif snapshot not in (None, "", "latest"):
        reference = _time(str(snapshot))
        lag_hours = (reference - _time(through)).total_seconds() / 3600
        if lag_hours > float(status.get("max_lag_hours", 0)):
            reasons.append(
                f"features are published through {through}, {lag_hours:.1f} h before the snapshot {snapshot} "
                f"(freshness SLA {status.get('max_lag_hours')} h): run the feature job first"
            )
    return {
        "ok": not reasons,
        "reasons": reasons,
        "feature_set_version": status.get("version"),
        "published_through": through,
        "lag_hours": lag_hours,
        "checked_at": now.isoformat(),
    }


def gate_outcome(evaluation: dict[str, Any] | None, uri: str = "") -> dict[str, Any]:
    """What the Choice branches on: promote or not, and every reason."""
    if evaluation is None:
        raise DataError(f"no evaluation report at {uri}; the evaluation job writes it")
    metrics = evaluation.get("metrics", {})
    overall = {n: p["overall"] for n, p in metrics.items() if isinstance(p, dict) and "overall" in p}
    overall.update({f"baseline_{b}": m.get("overall", {}) for b, m in metrics.get("baselines", {}).items()})
    version = str(evaluation["version"])
    champion = evaluation.get("champion_version")
    champion = None if champion is None else str(champion)
    return {
        "promote": bool(evaluation["promote"]),
        # a re-run of a released snapshot trains nothing new (training reuses the version):
        # releasing the champion against itself would only disturb what serves
        "already_champion": version == champion,
        "decision": evaluation["decision"],
        "reasons": list(evaluation["reasons"]),
        "version": version,
        "champion_version": champion,
        "thresholds": evaluation.get("thresholds", {}),
        "metrics": overall,
        # the run's allow-listed overrides, deployed and run values (rankops.pipeline.execution_input)
        "overrides": evaluation.get("overrides", {}),
        # what the release step verifies the model archive against (rankops.integrity)
        "artifacts": evaluation.get("artifacts", {}),
    }


def offpolicy_outcome(doc: dict[str, Any] | None, uri: str = "") -> dict[str, Any]:
    """What the ``OffPolicyOk?`` Choice branches on: ``stop`` (the reject path) or go on."""
    if doc is None:
        raise DataError(f"no off-policy report at {uri}; the off-policy job writes it")
    estimate = doc.get("estimate") or {}
    return {
        "stop": bool(doc["stop"]),
        "decision": doc["decision"],
        "reasons": list(doc["reasons"]),
        "version": str(doc["version"]),
        "lift": estimate.get("lift"),
        "lift_ci95": estimate.get("lift_ci95"),
    }
