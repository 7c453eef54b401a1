"""The day-by-day table and the PNG timeline of a simulation (both from its figures, i.e. the lake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COHORTS = ("champion", "challenger")


def _rate(figures: dict[str, Any], cohort: str, key: str) -> str:
    c = figures["cohorts"].get(cohort)
    return f"{c[key]:.3f} (n={c['answers']})" if c else "-"


def _at(iso: str) -> str:
    at = iso[11:16]
    return "24:00" if at == "00:00" else at  # the end of the day


def ctr_lift(check: dict[str, Any]) -> dict[str, Any] | None:
    """The canary check's CTR evidence (the judge's: counts per cohort, difference, interval)."""
    ctr = ((check.get("evidence") or {}).get("outcomes") or {}).get("ctr")
    return ctr if ctr and "interval" in ctr else None


def release_step(r: dict[str, Any]) -> str:
    """One release entry in words."""
    at, action = _at(r["at"]), r["action"]
    if action == "pipeline":
        stopped = r["stopped_by"]
        verdict = "released" if stopped is None else f"STOPPED by the {stopped}"
        offpolicy = r["offpolicy"]
        why = f" (off-policy {offpolicy['decision']}: {offpolicy['reasons'][0]})" if offpolicy.get("decision") else ""
        return f"{at} {r['what']}: {verdict}{why}"
    if action == "check":
        if r["mode"] == "shadow":
            f = r.get("shadow") or {}
            kl, rho = f.get("kl_divergence"), f.get("spearman_mean")
            figures = (
                f"KL {kl:.3f}, rank corr {rho:.3f}, n={f.get('requests')}" if kl is not None and rho is not None else ""
            )
            return f"{at} shadow {r['action_taken']}: {figures or r['reasons'][0]} after {r['hours']} h"
        lift = ctr_lift(r)
        if lift is not None:
            lo, hi = lift["interval"]
            c0, c1 = lift["control"], lift["canary"]
            figures = (
                f"CTR lift {lift['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                f"(challenger {c1['rate']:.3f} n={c1['answers']}, champion {c0['rate']:.3f} n={c0['answers']})"
            )
        else:
            figures = r["reasons"][0] if r["reasons"] else ""
        return f"{at} canary {r['share']:.0%} {r['action_taken']}: {figures} after {r['hours']} h"
    if action == "canary":
        return f"{at} canary {r.get('canary_share', 0):.0%} (v{r.get('challenger')})"
    if action in ("shadow", "promote", "rollback", "deploy"):
        return f"{at} {action} -> champion v{r.get('champion')}"
    return f"{at} {action}"


def _decision(checks: list[dict[str, Any]], steps: list[dict[str, Any]] = ()) -> str:  # type: ignore[assignment]
    parts = []
    for check in checks:
        t, at = check["trigger"], _at(check["until"])
        if check.get("reference_window"):
            parts.append(f"{at} serving reference taken")
        elif t is None:
            parts.append(f"{at} no drift")
        elif t["started"]:
            parts.append(f"{at} retrain started ({t['name']})")
        else:
            parts.append(f"{at} retrain held: {t['reason']}")
    parts += [release_step(r) for r in steps]
    return "; ".join(parts)


def _drifted(f: dict[str, Any]) -> str:
    """The judged drifted features, then the ageing ones over the threshold (not judged)."""
    text = ", ".join(f["drifted"]) or "none"
    ageing = f.get("ageing_over") or []
    return f"{text} (ageing, not judged: {', '.join(ageing)})" if ageing else text


def table(days: list[dict[str, Any]], k: int = 10) -> str:
    """One line per day: event, drift (max PSI, drifted features), score KL, CTR and click NDCG per
    cohort, and the trigger's decisions."""
    head = ["day", "date", "event", "max PSI", "drifted", "score KL", "CTR champion", "CTR challenger",
            f"click NDCG@{k}", "p99 ms", "decision"]  # fmt: skip
    rows = [head]
    for d in days:
        f = d["figures"]
        kl = ", ".join(f"v{v} {x:.3f}" if x is not None else f"v{v} n/a" for v, x in f["score_kl"].items()) or "-"
        ndcg = ", ".join(f"{c} {x:.3f}" for c, x in f[f"click_ndcg@{k}"].items() if x is not None) or "-"
        rows.append([str(d["day"]), d["date"], d["event"], f"{f['max_psi']:.3f}", _drifted(f),
                     kl, _rate(f, "champion", "ctr"), _rate(f, "challenger", "ctr"), ndcg,
                     "-" if f.get("p99_ms") is None else f"{f['p99_ms']:.1f}",
                     _decision(d["checks"], d.get("releases", []))])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = [" | ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot(days: list[dict[str, Any]], path: Path) -> None:
    """Timeline: max PSI per drift window (threshold dashed, retrains marked) over CTR per day and cohort."""
    import matplotlib

    matplotlib.use("Agg")
    from datetime import datetime

    import matplotlib.pyplot as plt

    checks = [c for d in days for c in d["checks"]]
    at = [datetime.fromisoformat(c["until"]) for c in checks]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(at, [c["max_psi"] for c in checks], marker="o", label="max PSI (window)")
    if checks:
        top.axhline(checks[0]["threshold"], linestyle="--", color="grey", label="drift threshold")
    for c, when in zip(checks, at, strict=True):
        if c["trigger"] is not None:
            started = c["trigger"]["started"]
            top.annotate("retrain" if started else "held", (when, c["max_psi"]), textcoords="offset points",
                         xytext=(0, 8), ha="center", color="red" if started else "grey")  # fmt: skip
    top.set_ylabel("PSI")
    top.legend(loc="upper left")
    day_end = [datetime.fromisoformat(d["figures"]["until"]) for d in days]
    for cohort in COHORTS:
        rates = [d["figures"]["cohorts"].get(cohort, {}).get("ctr") for d in days]
        if any(r is not None for r in rates):
            bottom.plot(
                day_end, [r if r is not None else float("nan") for r in rates], marker="s", label=f"CTR {cohort}"
            )
    bottom.set_ylabel("CTR (answers with a click)")
    bottom.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
