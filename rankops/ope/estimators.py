"""Off-policy estimators for rankings under a position-based click model.

Under the position-based model a click at position ``k`` depends only on the item shown
at ``k`` (and on the examination of ``k``), so a ranking policy's expected clicks per
request is the sum over positions of per-position values, and each position can be
reweighted on its own with the marginal probability of *that item at that position*
("independent" IPS, Li et al. 2018). One logged row is one (request, position, item):

* ``propensity`` -- the logging policy's marginal probability of the shown item at that
  position (1.0 for a deterministic answer),
* ``target`` -- the evaluated policy's marginal probability of the same item there,
* ``w = target / propensity`` -- the importance weight.

Every estimate carries a bootstrap interval that resamples *requests* (rows of one
request are correlated), the effective sample size of its weights, and warnings when
the logging policy gives the evaluated rankings too little support.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rankops.errors import DataError

MIN_ESS = 100.0  # below this an interval from resampling is not trustworthy
MIN_WEIGHT_MEAN = 0.9  # E_logging[w] = share of target mass the logging policy covers


@dataclass(frozen=True)
class RankingLog:
    """Logged rows, one per shown (request, position). ``request`` is 0..n-1."""

    request: np.ndarray
    position: np.ndarray
    click: np.ndarray
    propensity: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.request)
        if any(len(a) != n for a in (self.position, self.click, self.propensity)):
            raise DataError("logged rows: request, position, click and propensity must have one value per row")
        if n == 0:
            raise DataError("logged rows: the log is empty, nothing to evaluate")
        bad = np.flatnonzero(~((self.propensity > 0) & (self.propensity <= 1)))
        if len(bad):
            raise DataError(
                f"logged row {int(bad[0])}: propensity {self.propensity[bad[0]]!r} is outside (0, 1]; "
                "quarantine zero-propensity rows before estimating"
            )

    @property
    def n_requests(self) -> int:
        return int(self.request.max()) + 1


@dataclass(frozen=True)
class Estimate:
    """One estimator's value (expected clicks per request) with its evidence."""

    estimator: str
    value: float
    low: float
    high: float
    ess: float
    per_position: dict[int, float]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "estimator": self.estimator,
            "value": round(self.value, 6),
            "ci95": [round(self.low, 6), round(self.high, 6)],
            "ess": round(self.ess, 1),
            "per_position": {str(k): round(v, 6) for k, v in self.per_position.items()},
            "warnings": self.warnings,
        }


def weights(log: RankingLog, target: np.ndarray) -> np.ndarray:
    """Importance weights ``target / propensity`` of the logged rows."""
    if len(target) != len(log.request):
        raise DataError("target probabilities: one value per logged row expected")
    if np.any((target < 0) | (target > 1)):
        raise DataError("target probabilities must lie in [0, 1]")
    return target / log.propensity


def _positions(log: RankingLog) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positions and each row's index into them."""
    values, index = np.unique(log.position, return_inverse=True)
    return values, index


def _per_request(log: RankingLog, values: np.ndarray, pos_index: np.ndarray, n_pos: int) -> np.ndarray:
    """Sum ``values`` into a (requests, positions) table so resampling works on requests."""
    table = np.zeros((log.n_requests, n_pos))
    np.add.at(table, (log.request, pos_index), values)
    return table


BOOT_CELLS = 20_000_000  # resampling counts held in memory at once (160 MB of float64)


def _resampled_sums(tables: list[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """For each (requests, positions) table, its column sums in ``n_boot`` bootstrap samples of
    the requests: (n_boot, positions). Chunked so a log of millions of rows fits in memory."""
    n = tables[0].shape[0]
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = [[] for _ in tables]
    step = max(1, BOOT_CELLS // n)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        draws = (np.arange(b)[:, None] * n + rng.integers(0, n, (b, n))).ravel()
        counts = np.bincount(draws, minlength=b * n).reshape(b, n).astype(float)
        for acc, table in zip(out, tables, strict=True):
            acc.append(counts @ table)
    return [np.concatenate(acc) for acc in out]


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's ESS ``(sum w)^2 / sum w^2``: how many on-policy rows the weighted rows are worth."""
    denom = float(np.sum(w * w))
    return float(np.sum(w) ** 2 / denom) if denom > 0 else 0.0


def position_support(
    log: RankingLog, w: np.ndarray, covered: bool = False
) -> list[tuple[int, int, float, float, bool]]:
    """Per position: ``(position, rows, ESS, mean weight, uncovered)``. ``uncovered``: the mean
    weight is clearly below 1 (``E_logging[w]`` is the share of the target's mass the logging
    policy covers), i.e. the target shows there what the logging policy never does -- a bias, not
    noise, which no amount of data removes. ``covered``: the logging policy is known to show every
    logged item at every position (a uniform log), so nothing is uncovered and the mean weight's
    test, which a few rows can fail by chance, is not needed."""
    out = []
    values, index = _positions(log)
    for j, pos in enumerate(values):
        wk = w[index == j]
        mean_w = float(wk.mean())
        se = float(wk.std(ddof=1) / np.sqrt(len(wk))) if len(wk) > 1 else np.inf
        uncovered = not covered and mean_w < MIN_WEIGHT_MEAN and mean_w + 2.0 * se < 1.0  # clearly, not noise
        out.append((int(pos), len(wk), effective_sample_size(wk), mean_w, uncovered))
    return out


def support_warnings(log: RankingLog, w: np.ndarray, covered: bool = False) -> list[str]:
    """Too little support, per position (:func:`position_support`): positions the logging policy
    does not cover, and positions whose effective sample size is below ``MIN_ESS`` (a few rows carry
    the estimate)."""
    out: list[str] = []
    for pos, rows, ess, mean_w, uncovered in position_support(log, w, covered):
        if uncovered:
            out.append(
                f"position {pos}: mean importance weight {mean_w:.2f} (1.0 expected): the logging "
                f"policy never shows about {1 - mean_w:.0%} of what the evaluated policy shows there"
            )
        if ess < MIN_ESS:
            out.append(f"position {pos}: effective sample size {ess:.0f} of {rows} rows (< {MIN_ESS:.0f})")
    return out


def _finish(
    name: str,
    log: RankingLog,
    w: np.ndarray,
    point: np.ndarray,
    boot: np.ndarray,
    positions: np.ndarray,
    level: float,
) -> Estimate:
    low, high = _interval(boot, level)
    return Estimate(
        estimator=name,
        value=float(point.sum()),
        low=low,
        high=high,
        ess=effective_sample_size(w),
        per_position={int(p): float(v) for p, v in zip(positions, point, strict=True)},
        warnings=support_warnings(log, w),
    )


def ips(log: RankingLog, target: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 0) -> Estimate:
    """Per-position IPS: ``V = 1/n sum_i sum_k w_ik c_ik`` (unbiased when the logging policy covers
    the target)."""
    w = weights(log, target)
    positions, index = _positions(log)
    table = _per_request(log, w * log.click, index, len(positions))
    n = log.n_requests
    boot = _resampled_sums([table], n_boot, seed)[0].sum(axis=1) / n
    return _finish("ips", log, w, table.sum(axis=0) / n, boot, positions, level)


def snips(log: RankingLog, target: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 0) -> Estimate:
    """Self-normalised IPS per position: ``V = sum_k (n_k/n) sum_i w_ik c_ik / sum_i w_ik`` (a little
    bias for much less variance; ``n_k`` = requests with a position ``k``)."""
    w = weights(log, target)
    positions, index = _positions(log)
    n_pos, n = len(positions), log.n_requests
    wc = _per_request(log, w * log.click, index, n_pos)
    ws = _per_request(log, w, index, n_pos)
    rows = _per_request(log, np.ones_like(w), index, n_pos)

    def value(sum_wc: np.ndarray, sum_w: np.ndarray, shown: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(sum_w > 0, sum_wc / np.where(sum_w > 0, sum_w, 1.0), 0.0)
        return mean * shown / n

    boot = value(*_resampled_sums([wc, ws, rows], n_boot, seed)).sum(axis=1)
    point = value(wc.sum(axis=0), ws.sum(axis=0), rows.sum(axis=0))
    return _finish("snips", log, w, point, boot, positions, level)


def doubly_robust(
    log: RankingLog,
    target: np.ndarray,
    q_shown: np.ndarray,
    q_target: np.ndarray,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Doubly robust: ``V = 1/n sum_i sum_k [E_target q(x_i, ., k) + w_ik (c_ik - q(x_i, a_ik, k))]``.

    ``q_shown`` is the reward model's click probability of the shown item at its position,
    ``q_target`` the target policy's expected click probability at that request and position
    (``sum_a target(a, k) q(a, k)``). Unbiased if either the weights or the model are right."""
    if len(q_shown) != len(log.request) or len(q_target) != len(log.request):
        raise DataError("reward model: one prediction per logged row expected")
    w = weights(log, target)
    positions, index = _positions(log)
    table = _per_request(log, q_target + w * (log.click - q_shown), index, len(positions))
    n = log.n_requests
    boot = _resampled_sums([table], n_boot, seed)[0].sum(axis=1) / n
    return _finish("dr", log, w, table.sum(axis=0) / n, boot, positions, level)
