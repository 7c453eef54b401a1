"""The seam for the lake's own logs: evaluate a ranker from a table of logged rankings.

One row per shown (request, position): ``request_id``, ``position`` (1-based), ``item_id``,
``clicked`` and ``propensity`` (the logging policy's marginal probability of that item at
that position; 1.0 for a deterministic answer). The evaluated ranker is given as its
``score`` of each logged row's item; its ranking of a request is the items by descending
score, so its marginal of a row is 1 where it would put that item at that position, else 0.
The feedback log (``rankops/feedback``, issue 13) produces such a table; this module does
not read the lake itself.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.errors import DataError
from rankops.ope import estimators as est
from rankops.ope.reward import ItemPositionCTR, cross_fit

COLUMNS = ("request_id", "position", "item_id", "clicked", "propensity")


def ranking_log(table: pa.Table) -> tuple[est.RankingLog, np.ndarray, int]:
    """``(log, item codes, quarantined)`` from a logged-ranking table; rows with propensity 0
    are set aside, not divided by."""
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"logged rankings: missing column {missing[0]!r} (need {', '.join(COLUMNS)})")
    prop = table["propensity"].to_numpy(zero_copy_only=False).astype(float)
    keep = prop > 0
    table = table.filter(pa.array(keep))
    request = pc.dictionary_encode(table["request_id"]).combine_chunks().indices.to_numpy()
    item = pc.dictionary_encode(pc.cast(table["item_id"], pa.string())).combine_chunks().indices.to_numpy()
    _, request = np.unique(request, return_inverse=True)
    log = est.RankingLog(
        request.astype(np.int64),
        table["position"].to_numpy(zero_copy_only=False).astype(np.int64),
        table["clicked"].to_numpy(zero_copy_only=False).astype(float),
        prop[keep],
    )
    return log, item.astype(np.int64), int((~keep).sum())


def deterministic_target(log: est.RankingLog, score: np.ndarray) -> np.ndarray:
    """1.0 where ranking each request's logged items by ``score`` puts the row's item at the row's
    position, else 0.0 (the ranker's own positions among the items the log shows)."""
    order = np.lexsort((-score, log.request))
    starts = np.searchsorted(log.request[order], log.request[order], side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts + 1
    return (rank == log.position).astype(float)


def evaluate_ranker(table: pa.Table, score: np.ndarray, n_boot: int = 500, seed: int = 0) -> dict[str, object]:
    """IPS, SNIPS and DR of the ranker that scored ``score`` (one per row of ``table``)."""
    if len(score) != table.num_rows:
        raise DataError(f"scores: {len(score)} given for {table.num_rows} logged rows")
    keep = table["propensity"].to_numpy(zero_copy_only=False).astype(float) > 0
    log, item, quarantined = ranking_log(table)
    score = np.asarray(score, dtype=float)[keep]
    target = deterministic_target(log, score)

    def target_click(model: ItemPositionCTR, rows: np.ndarray) -> np.ndarray:
        # the item the ranker puts at this row's position, looked up among the request's rows
        placed = np.flatnonzero(target == 1.0)
        at = {(int(log.request[r]), int(log.position[r])): int(item[r]) for r in placed}
        chosen = np.array([at.get((int(log.request[r]), int(log.position[r])), -1) for r in rows])
        return model.predict(chosen, log.position[rows])

    q_shown, q_target = cross_fit(log, item, target_click, seed=seed)
    estimates = [
        est.ips(log, target, n_boot=n_boot, seed=seed),
        est.snips(log, target, n_boot=n_boot, seed=seed),
        est.doubly_robust(log, target, q_shown, q_target, n_boot=n_boot, seed=seed),
    ]
    return {
        "rows": table.num_rows,
        "requests": log.n_requests,
        "quarantined_zero_propensity": quarantined,
        "logged_clicks_per_request": round(float(log.click.sum() / log.n_requests), 6),
        "unit": "clicks per request",
        "estimates": [e.as_dict() for e in estimates],
    }
