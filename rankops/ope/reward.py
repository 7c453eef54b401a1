"""The reward model doubly robust estimation needs: click probability of an item at a position.

Deliberately simple -- the click rate of each (item, position) pair, shrunk towards its
position's rate -- because DR stays unbiased with a wrong model (the importance-weighted
residual corrects it) and only gains variance reduction from a good one. Fitted with
cross-fitting (two halves of the requests, each scored by the model of the other half) so
the model never predicts the clicks it was fitted on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rankops.ope.estimators import RankingLog

PRIOR_ROWS = 20.0  # pseudo-rows of the position's rate in each pair's estimate


@dataclass(frozen=True)
class ItemPositionCTR:
    """Shrunk click rate per (item, position); unknown pairs get their position's rate."""

    positions: np.ndarray  # sorted distinct positions
    position_ctr: np.ndarray  # rate per entry of ``positions``
    keys: np.ndarray  # sorted (item, position) keys seen in fitting
    pair_ctr: np.ndarray  # shrunk rate per key

    @classmethod
    def fit(cls, item: np.ndarray, position: np.ndarray, click: np.ndarray) -> ItemPositionCTR:
        positions = np.unique(position)
        pos_idx = np.searchsorted(positions, position)
        shown = np.bincount(pos_idx, minlength=len(positions))
        position_ctr = np.bincount(pos_idx, weights=click, minlength=len(positions)) / np.maximum(shown, 1)
        keys, inv = np.unique(_key(item, pos_idx), return_inverse=True)
        clicks = np.bincount(inv, weights=click)
        rows = np.bincount(inv)
        prior = position_ctr[keys % _POSITIONS]
        return cls(positions, position_ctr, keys, (clicks + PRIOR_ROWS * prior) / (rows + PRIOR_ROWS))

    def predict(self, item: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Click probability of each ``item`` at each ``position`` (broadcast shapes)."""
        item, position = np.broadcast_arrays(item, position)
        pos_idx = np.clip(np.searchsorted(self.positions, position), 0, len(self.positions) - 1)
        known = self.positions[pos_idx] == position
        out = np.where(known, self.position_ctr[pos_idx], float(self.position_ctr.mean()))
        key = _key(item, pos_idx)
        at = np.clip(np.searchsorted(self.keys, key), 0, max(len(self.keys) - 1, 0))
        hit = known & (self.keys[at] == key) if len(self.keys) else np.zeros(key.shape, bool)
        return np.where(hit, self.pair_ctr[at] if len(self.keys) else 0.0, out)


_POSITIONS = 1 << 16


def _key(item: np.ndarray, pos_idx: np.ndarray) -> np.ndarray:
    return np.asarray(item, dtype=np.int64) * _POSITIONS + np.asarray(pos_idx, dtype=np.int64)


def cross_fit(
    log: RankingLog,
    item: np.ndarray,
    target_click: Callable[[ItemPositionCTR, np.ndarray], np.ndarray],
    folds: int = 2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(q_shown, q_target)`` per logged row, each row predicted by a model fitted on the other
    folds' requests. ``target_click(model, rows)`` returns the target policy's expected click
    probability at those rows' (request, position) under ``model``."""
    fold_of_request = np.random.default_rng(seed).integers(0, folds, log.n_requests)
    fold = fold_of_request[log.request]
    q_shown = np.empty(len(fold))
    q_target = np.empty(len(fold))
    for f in range(folds):
        rows = np.flatnonzero(fold == f)
        train = fold != f
        if not train.any():  # a log too small to split: fit on all of it
            train = np.ones(len(fold), dtype=bool)
        model = ItemPositionCTR.fit(item[train], log.position[train], log.click[train])
        q_shown[rows] = model.predict(item[rows], log.position[rows])
        q_target[rows] = target_click(model, rows)
    return q_shown, q_target
