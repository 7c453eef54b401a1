"""The figures of one window, computed from the logged feedback and outcome events only.

Nothing here reads the simulator's own bookkeeping: drift comes from the feedback log against the
training reference (:mod:`rankops.monitoring.drift_report`), click-through from the feedback log
joined to ``raw/outcomes`` (:func:`rankops.release.ctr_judge.cohort_counts`, the canary's own
counting), NDCG@k from the observed clicks of each shown ranking.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rankops.features import registry
from rankops.feedback import store
from rankops.monitoring import drift_report as dr
from rankops.release.ctr_judge import cohort_counts

if TYPE_CHECKING:
    import pyarrow as pa

    from rankops.config import Settings
    from rankops.lake import Lake


def click_ndcg(feedback: pa.Table, outcomes: pd.DataFrame, k: int) -> dict[str, float | None]:
    """Per cohort: mean NDCG@k of the shown order against the observed clicks (answers with a click)."""
    if feedback.num_rows == 0:
        return {}
    joined = store.join_outcomes(feedback, outcomes)
    top = joined[joined["position"] <= k].assign(gain=lambda f: (f["click"] > 0).astype(float))
    top = top.assign(discounted=top["gain"] / np.log2(top["position"] + 1.0))
    out: dict[str, float | None] = {}
    for variant, part in top.groupby("variant"):
        dcg = part.groupby("request_id")["discounted"].sum()
        clicks = part.groupby("request_id")["gain"].sum().astype(int)
        ideal = clicks.map(lambda n: float(np.sum(1.0 / np.log2(np.arange(2, n + 2)))))
        has = clicks > 0
        out[str(variant)] = float((dcg[has] / ideal[has]).mean()) if has.any() else None
    return out


def ageing_features() -> set[str]:
    """Features that measure a listing's age: the simulated catalogue adds no listings, so their
    distribution moves with simulated time alone (docs/simulate.md, Known limits)."""
    return {registry.measuring("item_age_days")}


def window_figures(
    lake: Lake,
    settings: Settings,
    manifest: dict[str, Any],
    since: datetime,
    until: datetime,
    references: dict[str, dict[str, Any] | None],
    k: int,
) -> dict[str, Any]:
    """Drift (PSI per feature over the window, the drifted ones, score KL per version), answers,
    CTR and contact rate per cohort, click NDCG@k: all from the lake's feedback and outcomes.
    ``drifted`` leaves out the ageing features (reported under ``ageing_over``): with no new
    listings they drift however steady the traffic, and would start a retrain every cooldown."""
    feedback = store.read(lake, since, until)
    dr.require_traffic(feedback, since, until)
    outcomes = store.read_outcomes(lake, since).to_pandas()
    report = dr.drift_report(lake, settings, manifest, feedback, since, until, references)
    (window,) = report["daily"]  # a window never spans two days (its hours divide 24)
    psi = window["psi"]
    threshold = report["threshold"]
    counts = cohort_counts(feedback, outcomes, k)
    kl = {v: e["kl"] for v, e in (report["score_kl"] or {}).items()}
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "answers": int(feedback.num_rows),
        "psi": psi,
        "max_psi": max(psi.values()),
        "threshold": threshold,
        "drifted": sorted(n for n, v in psi.items() if v > threshold and n not in ageing_features()),
        "ageing_over": sorted(n for n, v in psi.items() if v > threshold and n in ageing_features()),
        "score_kl": kl,
        "cohorts": {
            v: {**c, "ctr": c["clicked"] / c["answers"], "contact_rate": c["contacted"] / c["answers"]}
            for v, c in counts.items()
        },
        f"click_ndcg@{k}": click_ndcg(feedback, outcomes, k),
    }
