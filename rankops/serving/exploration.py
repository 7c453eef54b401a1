"""Which policy answers a request, and the shown order with its exact per-position propensities.

Three logging policies, chosen per user (sticky, like the canary: the same keyed hash of the user
id, :func:`rankops.release.bucketing.bucket`, with its own salt so the slices are independent of
the canary's):

* ``uniform`` -- the lowest ``uniform_share`` of buckets: every candidate in uniformly random
  order, each item at each position with probability ``1/n``. The unbiased reference sample.
* ``explore`` -- the next ``share``: a Plackett-Luce draw over the routed model's top ``top_k``
  at ``temperature`` (:func:`rankops.ope.exploration.sample`, exact marginals).
* ``deterministic`` -- everyone else, requests that force a variant (pre-traffic checks, shadow
  callers) and answers a lower fallback level gave: the model's order, propensity 1.0.

The draw is seeded by user and request (:func:`rankops.ope.exploration.user_rng`): a user
repeating a search sees the same order, and the logged order can be reproduced.

With ``log_features`` (wherever answers are captured: a SageMaker container's data capture, the
local server's feedback log, which writes the same format) an explored or uniform answer also
carries the feature values it was scored on (:meth:`Explorer.logged_features`,
the response's ``logged_features``), so off-policy evaluation can re-score the logged slate from
the capture alone; deterministic answers never do, so they stay as small and as fast as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rankops.ope import exploration as pl
from rankops.release.bucketing import bucket

if TYPE_CHECKING:
    from rankops.config_sections import ExplorationConfig
    from rankops.serving.schema import RankRequest

POLICIES = ("deterministic", "explore", "uniform")


@dataclass(frozen=True)
class Explorer:
    share: float = 0.0
    uniform_share: float = 0.0
    temperature: float = 1.0
    top_k: int = 4
    salt: str = "explore"
    log_features: bool = False  # randomised answers carry their features (their capture is the log)

    @classmethod
    def from_config(cls, cfg: ExplorationConfig, salt_base: str, log_features: bool = False) -> Explorer:
        return cls(cfg.share, cfg.uniform_share, cfg.temperature, cfg.top_k, f"{salt_base}:{cfg.salt}", log_features)

    @property
    def active(self) -> bool:
        return self.share > 0 or self.uniform_share > 0

    def policy(self, user_id: str, forced: bool = False) -> str:
        """The user's sticky policy; ``forced`` (a request naming its variant) is always deterministic."""
        if forced or not self.active:
            return "deterministic"
        u = bucket(user_id, self.salt)
        if u < self.uniform_share:
            return "uniform"
        return "explore" if u < self.uniform_share + self.share else "deterministic"

    def arrange(self, request: RankRequest, scores: np.ndarray, policy: str) -> tuple[np.ndarray, np.ndarray]:
        """``(order, propensity)``: ``order[j]`` the candidate shown at position ``j + 1``,
        ``propensity[j]`` its probability there under ``policy``."""
        if policy == "deterministic":
            return pl.deterministic(scores)
        key = json.dumps([request.context, request.candidates], sort_keys=True, default=str)
        rng = pl.user_rng(request.user_id, key, self.salt)
        if policy == "uniform":
            n = len(scores)
            return rng.permutation(n), np.full(n, 1.0 / n)
        return pl.sample(scores, self.temperature, self.top_k, rng)

    def logged_features(
        self, policy: str, columns: dict[str, np.ndarray], order: np.ndarray
    ) -> dict[str, np.ndarray] | None:
        """``{name: value per shown item, in the order shown}`` for a randomised answer when
        ``log_features`` is on, else ``None``. The arrays are encoded by orjson (NaN as ``null``)."""
        if not self.log_features or policy == "deterministic":
            return None
        return {name: np.asarray(column, dtype=np.float64)[order] for name, column in columns.items()}
