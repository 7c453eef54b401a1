"""The feedback-loop guard: is the catalogue users see narrowing release after release?

A ranker trained on the clicks its predecessor caused learns that predecessor's choices, so
each release can show fewer items at the top. Two views, both from the feedback log:

* **What was shown**, per model version that served (deterministic answers by the model
  itself, oldest version first): of the items that were candidates, the share ever shown in
  the first ``top`` positions (``coverage``), the share of those top impressions the most-shown
  10% of candidates took (``top_decile_share``) and the Gini coefficient of top impressions
  over candidates. A falling coverage and a rising concentration across releases is the loop.
* **Unbiased**, on the uniform slice (every candidate equally likely at every position, so no
  logging policy's bias): champion and challenger re-scored, with their estimated clicks per
  request (SNIPS, interval, ESS) -- an estimate that does not depend on what either showed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rankops import registry
from rankops.errors import DataError
from rankops.feedback import store
from rankops.ope import feedback_eval

if TYPE_CHECKING:
    from rankops.config import Settings
    from rankops.lake import Lake


def gini(counts: np.ndarray) -> float:
    """0 when every item is shown equally often, towards 1 when a few take every impression."""
    x = np.sort(np.asarray(counts, dtype=float))
    if x.sum() == 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def shown_catalogue(feedback: pa.Table, top: int = 10, last: int = 5) -> list[dict[str, Any]]:
    """Per version (the ``last`` highest version numbers), how widely its top ``top`` spread."""
    frame = feedback.select(["model_version", "items", "policy", "variant", "fallback_level"]).to_pandas()
    by_model = frame.model_version.notna() & (frame.variant == frame.fallback_level)  # not a fallback's answer
    deterministic = frame.policy.fillna("deterministic") == "deterministic"  # null: logged before policies existed
    own = frame[deterministic & by_model]
    versions = sorted(own.model_version.unique(), key=lambda v: (len(v), v))[-last:]
    out = []
    for version in versions:
        rows = own[own.model_version == version]
        candidates = pd.Series([i for items in rows["items"] for i in items]).unique()
        shown = pd.Series([i for items in rows["items"] for i in items[:top]]).value_counts()
        counts = shown.reindex(candidates, fill_value=0).to_numpy()
        decile = max(1, len(counts) // 10)
        out.append(
            {
                "version": version,
                "answers": len(rows),
                "candidates": len(candidates),
                "shown_in_top": int((counts > 0).sum()),
                "coverage": round(float((counts > 0).mean()), 4),
                "top_decile_share": round(float(np.sort(counts)[::-1][:decile].sum() / counts.sum()), 4),
                "gini": round(gini(counts), 4),
            }
        )
    return out


def report(
    settings: Settings, lake: Lake, since: datetime | None = None, top: int = 10, last: int = 5, n_boot: int = 500
) -> dict[str, Any]:
    """The guard's report: the shown catalogue across releases and the unbiased estimates."""
    feedback = store.read(lake, since)
    if feedback.num_rows == 0:
        raise DataError("the feedback log has no answers in this window: nothing to guard")
    releases = shown_catalogue(feedback, top, last)
    narrowing = None
    if len(releases) >= 2:
        first, latest = releases[0], releases[-1]
        narrowing = {
            "from_version": first["version"],
            "to_version": latest["version"],
            "coverage_change": round(latest["coverage"] - first["coverage"], 4),
            "gini_change": round(latest["gini"] - first["gini"], 4),
        }
    unbiased: dict[str, Any] = {}
    try:
        uniform = feedback_eval.load(lake, since, None, ["uniform"])
    except DataError as err:
        unbiased["unavailable"] = f"no uniform slice to judge on ({err}); set exploration.uniform_share"
    else:
        for alias in (registry.CHAMPION, registry.CHALLENGER):
            version = registry.alias_version(settings, alias)
            if version is None:
                continue
            result = feedback_eval.evaluate_version(settings, uniform, version, n_boot=n_boot)
            snips = next(e for e in result["click"]["estimates"] if e["estimator"] == "snips")
            unbiased[alias] = {"version": version, "uniform_answers": uniform.requests, "clicks_per_request": snips}
    return {"top_positions": top, "releases": releases, "narrowing": narrowing, "unbiased": unbiased}
