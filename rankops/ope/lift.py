"""One ranker against another on the same log: the lift in clicks per request, with its interval.

Both rankers' self-normalised IPS estimates (:func:`rankops.ope.estimators.snips`) come from
the same logged rows, so their errors are correlated; the lift's interval resamples the
*requests* once for both (a paired bootstrap), which is much tighter than subtracting two
independent intervals. Only the first ``max_position`` positions are judged (each ranker's
target is computed on the whole logged slate first): that is where clicks and support are.
``support`` summarises the weakest position of either ranker (its effective sample size, and the
positions the logging policy does not cover) for :func:`rankops.ope.gate.decide`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from rankops.ope import estimators as est
from rankops.ope.logged import deterministic_target, ranking_log


def _snips_value(sum_wc: np.ndarray, sum_w: np.ndarray, shown: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sum_w > 0, sum_wc / np.where(sum_w > 0, sum_w, 1.0), 0.0)
    return (mean * shown / n).sum(axis=-1)


def compare(
    table: pa.Table,
    score_a: np.ndarray,
    score_b: np.ndarray,
    max_position: int = 10,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
    covered: bool = False,
) -> dict[str, Any]:
    """SNIPS of ranker ``a`` and ranker ``b`` (scores per row of ``table``) and ``a - b``.
    ``covered``: the log is uniform, every item at every position (``estimators.position_support``)."""
    keep = table["propensity"].to_numpy(zero_copy_only=False).astype(float) > 0
    full, _, quarantined = ranking_log(table)
    targets = [deterministic_target(full, np.asarray(s, dtype=float)[keep]) for s in (score_a, score_b)]
    top = full.position <= max_position
    log = est.RankingLog(full.request[top], full.position[top], full.click[top], full.propensity[top])
    positions, index = np.unique(log.position, return_inverse=True)
    n = log.n_requests
    tables, estimates, support, warnings = [], [], [], set()
    for target in targets:
        t = target[top]
        w = est.weights(log, t)
        support += est.position_support(log, w, covered)
        warnings |= set(est.support_warnings(log, w, covered))
        tables += [
            est._per_request(log, w * log.click, index, len(positions)),
            est._per_request(log, w, index, len(positions)),
        ]
        estimates.append(est.snips(log, t, n_boot=n_boot, level=level, seed=seed))
    rows = est._per_request(log, np.ones(len(log.request)), index, len(positions))
    boot = est._resampled_sums([*tables, rows], n_boot, seed)
    a_boot = _snips_value(boot[0], boot[1], boot[4], n)
    b_boot = _snips_value(boot[2], boot[3], boot[4], n)
    low, high = est._interval(a_boot - b_boot, level)
    a, b = estimates
    return {
        "estimator": "snips",
        "unit": "clicks per request",
        "positions": int(positions.max()),
        "requests": n,
        "quarantined_zero_propensity": quarantined,
        "a": a.as_dict(),
        "b": b.as_dict(),
        "lift": round(a.value - b.value, 6),
        "lift_ci95": [round(low, 6), round(high, 6)],
        "warnings": sorted(warnings),
        # the weakest position of either ranker: what the gate's decision rule reads
        "support": {
            "min_ess": round(min(s[2] for s in support), 1),
            "uncovered_positions": sorted({s[0] for s in support if s[4]}),
        },
    }
