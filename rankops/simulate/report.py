"""The day-by-day table and the PNG timeline of a simulation (both from its figures, i.e. the lake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COHORTS = ("champion", "challenger")


def _rate(figures: dict[str, Any], cohort: str, key: str) -> str:
    c = figures["cohorts"].get(cohort)
    return f"{c[key]:.3f} (n={c['answers']})" if c else "-"


def _decision(checks: list[dict[str, Any]]) -> str:
    parts = []
    for check in checks:
        t, at = check["trigger"], check["until"][11:16]
        at = "24:00" if at == "00:00" else at  # the end of the day
        if t is None:
            parts.append(f"{at} no drift")
        elif t["started"]:
            parts.append(f"{at} retrain started ({t['name']})")
        else:
            parts.append(f"{at} retrain held: {t['reason']}")
    return "; ".join(parts)


def table(days: list[dict[str, Any]], k: int = 10) -> str:
    """One line per day: event, drift (max PSI, drifted features), score KL, CTR and click NDCG per
    cohort, and the trigger's decisions."""
    head = ["day", "date", "event", "max PSI", "drifted", "score KL", "CTR champion", "CTR challenger",
            f"click NDCG@{k}", "decision"]  # fmt: skip
    rows = [head]
    for d in days:
        f = d["figures"]
        kl = ", ".join(f"v{v} {x:.3f}" if x is not None else f"v{v} n/a" for v, x in f["score_kl"].items()) or "-"
        ndcg = ", ".join(f"{c} {x:.3f}" for c, x in f[f"click_ndcg@{k}"].items() if x is not None) or "-"
        rows.append([str(d["day"]), d["date"], d["event"], f"{f['max_psi']:.3f}", ", ".join(f["drifted"]) or "none",
                     kl, _rate(f, "champion", "ctr"), _rate(f, "challenger", "ctr"), ndcg,
                     _decision(d["checks"])])  # fmt: skip
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
