"""Simulated searches: who searches what, when, and which candidates retrieval returns.

The steady mix is the marketplace's own: each simulated search re-uses the (user, query
category, device) of a search the generator logged, so served traffic matches the training
reference until something changes it. A **campaign** sends a share of searches to one category
(the drift the loop must notice). Retrieval follows the generator: each candidate comes from the
query category with probability 0.6, else from any category, among items that exist by then;
slate sizes are the generator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.errors import DataError
from rankops.simulate.truth import Truth
from rankops.synthetic import CATEGORIES, DEVICES, HOUR_WEIGHTS

if TYPE_CHECKING:
    from rankops.lake import Lake

FROM_QUERY = 0.6  # the generator's retrieval: share of candidates from the query category


@dataclass(frozen=True)
class Mix:
    """The logged searches to resample: user number, query category index, device index."""

    user: np.ndarray
    query: np.ndarray
    device: np.ndarray


@dataclass(frozen=True)
class Campaign:
    """From ``day`` on, ``share`` of the searches look for ``category``."""

    category: str
    share: float
    day: int = 1


def logged_mix(lake: Lake) -> Mix:
    """One row per search the marketplace logged (``raw/events``)."""
    parts = lake.partitions("raw", "events")
    if not parts:
        raise DataError(f"no events in {lake.uri('raw', 'events')}: run `rankops demo` (or generate) first")
    table = lake.read("raw", "events", ["request_id", "user_id", "query_category", "device"], parts)
    frame = table.to_pandas().drop_duplicates("request_id")
    return Mix(
        frame["user_id"].str[2:].astype(np.int64).to_numpy(),
        frame["query_category"].map({c: k for k, c in enumerate(CATEGORIES)}).to_numpy(np.int64),
        frame["device"].map({d: k for k, d in enumerate(DEVICES)}).to_numpy(np.int64),
    )


def quietest_category(mix: Mix) -> str:
    """The category searched least in the steady mix: a campaign there shifts traffic the most."""
    counts = np.bincount(mix.query, minlength=len(CATEGORIES))
    return CATEGORIES[int(np.argmin(counts))]


def hourly_counts(per_day: int, rng: np.random.Generator) -> np.ndarray:
    """Searches per hour of one day, following the generator's daily curve."""
    return rng.multinomial(per_day, HOUR_WEIGHTS / HOUR_WEIGHTS.sum())


class Searches:
    """Draws the requests of one hour (the JSON bodies the server is sent)."""

    def __init__(self, truth: Truth, mix: Mix, rng: np.random.Generator) -> None:
        self.truth, self.mix, self.rng = truth, mix, rng
        order = np.argsort(truth.created_ms, kind="stable")
        self.pools = [order[truth.category[order] == c] for c in range(len(CATEGORIES))]

    def _candidates(self, query: int, ts_ms: int, size: int) -> list[str]:
        rng, chosen = self.rng, dict[int, None]()
        for _ in range(4 * size):  # retrieval oversamples; duplicates are dropped
            cat = query if rng.random() < FROM_QUERY else int(rng.integers(len(CATEGORIES)))
            pool = self.pools[cat]
            exist = int(np.searchsorted(self.truth.created_ms[pool], ts_ms, side="right"))
            if exist:
                chosen[int(pool[rng.integers(exist)])] = None
            if len(chosen) == size:
                break
        return [f"i-{i}" for i in chosen]

    def hour(self, start_ms: int, count: int, campaign: Campaign | None) -> list[dict[str, Any]]:
        """``count`` searches in the hour from ``start_ms``, in time order."""
        spec, rng = self.truth.spec, self.rng
        rows = rng.integers(len(self.mix.user), size=count)
        # searchers drawn over all of the marketplace's users: its logged searches come from few heavy
        # users (Zipf activity), and sticky per-user buckets (canary, exploration) would then get far
        # from their configured share of searches (docs/simulate.md)
        users = rng.integers(spec.n_users, size=count)
        ts = np.sort(start_ms + rng.integers(0, 3_600_000, count))
        query = self.mix.query[rows].copy()
        if campaign is not None:
            query[rng.random(count) < campaign.share] = CATEGORIES.index(campaign.category)
        sizes = rng.integers(spec.slate_min, spec.slate_max + 1, count)
        return [
            {
                "user_id": f"u-{u}",
                "context": {"category": CATEGORIES[q], "device": DEVICES[self.mix.device[r]]},
                "candidates": self._candidates(int(q), int(t), int(n)),
                "ts": t / 1000,
            }
            for r, u, q, t, n in zip(rows, users, query, ts, sizes, strict=True)
        ]
