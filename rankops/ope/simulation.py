"""Simulated exploration traffic whose every policy has a known true value.

The synthetic marketplace's hidden click model (``synthetic.click_probability``) gives the
click probability of any candidate at any position, so a policy's true expected clicks per
request is exact: ``sum_i sum_m sum_j P_policy(m at j | i) * click(m, j | i) / n``. Each
request's candidates are the first ``k`` items its retrieval returned; policies are
Plackett-Luce over a score at a temperature, with exact marginals from ``exploration``.
One world (requests, candidates, utilities) is drawn once; each seed draws a new log of
randomised rankings and clicks from it, which is what an interval's coverage is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.ope import estimators as est
from rankops.ope import lift
from rankops.ope.exploration import marginals
from rankops.ope.reward import ItemPositionCTR, cross_fit
from rankops.synthetic import DEVICES, MarketplaceSpec, click_probability, generate

LOGGING_TEMPERATURE = 1.0  # the logging policy's exploration: Plackett-Luce over its scores at this


@dataclass(frozen=True)
class World:
    """Requests with ``k`` candidates each: item ids, true utilities and click probabilities."""

    item: np.ndarray  # (n, k) item ids
    utility: np.ndarray  # (n, k) hidden
    click: np.ndarray  # (n, k, k) click probability of candidate m at position j (hidden)
    logging_score: np.ndarray  # (n, k) what the logging ranker scores


def world(events: int = 30_000, k: int = 5, seed: int = 0) -> World:
    """Candidates and truth from a small synthetic marketplace."""
    market = generate(MarketplaceSpec(events=events, days=3, seed=seed, start=date(2026, 11, 1)))
    position = market.events["position"].to_numpy()
    first = np.flatnonzero(position <= k)
    n = len(first) // k
    first = first[: n * k]
    item = np.array([int(s[2:]) for s in market.events["item_id"].take(first).to_pylist()]).reshape(n, k)
    utility = market.utility[first].reshape(n, k)
    device = pc.index_in(market.events["device"].take(first), value_set=pa.array(list(DEVICES))).to_numpy()
    device = device.reshape(n, k)[:, 0]
    positions = np.arange(1, k + 1)
    click = click_probability(utility[:, :, None], positions[None, None, :], device[:, None, None])
    noise = np.random.default_rng(seed + 1).normal(0.0, 1.0, (n, k))
    return World(item, utility, click, 0.5 * utility + noise)


def true_value(w: World, policy: np.ndarray) -> float:
    """Exact expected clicks per request of a policy given as (n, k, k) marginals."""
    return float(np.einsum("nmj,nmj->n", policy, w.click).mean())


def draw_log(w: World, logging: np.ndarray, seed: int) -> tuple[est.RankingLog, np.ndarray, np.ndarray]:
    """One log: a Plackett-Luce ranking per request from ``logging`` scores' policy and clicks
    from the hidden model. Returns the log, the shown candidate index per row and item ids."""
    rng = np.random.default_rng(seed)
    n, k = w.item.shape
    order = np.argsort(-(w.logging_score / LOGGING_TEMPERATURE + rng.gumbel(size=(n, k))), axis=1)
    rows = np.repeat(np.arange(n), k)
    pos_idx = np.tile(np.arange(k), n)
    shown = order.ravel()
    propensity = logging[rows, shown, pos_idx]
    clicked = (rng.random(n * k) < w.click[rows, shown, pos_idx]).astype(float)
    log = est.RankingLog(rows, pos_idx + 1, clicked, propensity)
    return log, shown, w.item[rows, shown]


def evaluate(
    w: World,
    logging: np.ndarray,
    target: np.ndarray,
    seed: int,
    n_boot: int = 200,
    which: tuple[str, ...] = ("ips", "snips", "dr"),
) -> dict[str, est.Estimate]:
    """IPS, SNIPS and DR (``which`` of them) of ``target`` (marginals) from one log drawn under
    ``logging``."""
    log, shown, item = draw_log(w, logging, seed)
    pos_idx = log.position - 1
    t_shown = target[log.request, shown, pos_idx]

    def target_click(model: ItemPositionCTR, rows: np.ndarray) -> np.ndarray:
        req, j = log.request[rows], pos_idx[rows]
        q = model.predict(w.item[req], log.position[rows][:, None])  # (rows, k) every candidate at j
        return np.einsum("rm,rm->r", target[req, :, j], q)

    out: dict[str, est.Estimate] = {}
    if "ips" in which:
        out["ips"] = est.ips(log, t_shown, n_boot=n_boot, seed=seed)
    if "snips" in which:
        out["snips"] = est.snips(log, t_shown, n_boot=n_boot, seed=seed)
    if "dr" in which:
        q_shown, q_target = cross_fit(log, item, target_click, seed=seed)
        out["dr"] = est.doubly_robust(log, t_shown, q_shown, q_target, n_boot=n_boot, seed=seed)
    return out


def policies(w: World) -> dict[str, np.ndarray]:
    """The logging policy and two targets, as exact (n, k, k) marginals."""
    return {
        "logging": marginals(w.logging_score, LOGGING_TEMPERATURE),
        "better": marginals(w.utility, 0.5),  # ranks by true utility, a little randomised
        "worse": marginals(-w.utility, 1.0),
    }


def ranking_value(w: World, score: np.ndarray, rows: np.ndarray) -> float:
    """Exact expected clicks per request of ranking each of ``rows``' candidates by ``score``."""
    order = np.argsort(-score[rows], axis=1)
    positions = np.arange(order.shape[1])[None, :]
    return float(w.click[rows[:, None], order, positions].sum(axis=1).mean())


def uniform_lift(
    w: World, score_a: np.ndarray, score_b: np.ndarray, n_requests: int, seed: int, n_boot: int = 200
) -> tuple[float, dict[str, object]]:
    """``(true lift, estimated lift)`` of ranker ``a`` over ranker ``b`` (scores per candidate,
    (n, k)) from a uniform-random log of ``n_requests`` requests drawn from the world: every
    candidate at every position with ``1/k``, the log the off-policy gate falls back to
    (:func:`rankops.ope.gate.compare`). The estimate is :func:`rankops.ope.lift.compare`'s, so its
    interval and ``support.min_ess`` are the gate's."""
    rng = np.random.default_rng(seed)
    n, k = w.item.shape
    rows = rng.choice(n, n_requests, replace=False)
    order = np.argsort(rng.random((n_requests, k)), axis=1)
    request, position = np.repeat(np.arange(n_requests), k), np.tile(np.arange(k), n_requests)
    shown, world_row = order.ravel(), rows[np.repeat(np.arange(n_requests), k)]
    clicked = (rng.random(n_requests * k) < w.click[world_row, shown, position]).astype(float)
    table = pa.table(
        {
            "request_id": request,
            "position": position + 1,
            "item_id": w.item[world_row, shown],
            "clicked": clicked,
            "propensity": np.full(n_requests * k, 1.0 / k),
        }
    )
    estimate = lift.compare(table, score_a[world_row, shown], score_b[world_row, shown], k, n_boot, seed=seed)
    return ranking_value(w, score_a, rows) - ranking_value(w, score_b, rows), estimate
