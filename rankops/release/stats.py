"""Shadow comparison statistics: how differently would the challenger rank?

Two views, because they answer different questions:

* per request, rank correlation (Spearman, Kendall tau-b) and top-1 agreement
  between the champion's and the challenger's scores of the same candidates:
  *would users see a different order?* Invariant to score scale.
* over all requests, the KL divergence between the two score distributions
  (histograms on shared equal-width bins over the pooled scores), twice: of the scores
  standardized within each request (``kl_divergence``: *did the shape of how the
  candidates of a request are spread move?*, what the shadow decision uses, since a
  lambdarank model's raw scale is arbitrary and differs between any two trainings), and of
  the raw scores (``raw_kl_divergence``: *did the scale move?*, reported because it matters
  wherever scores are used as numbers: thresholds, auctions, blending).

A :class:`ShadowAccumulator` keeps running sums and a bounded window of recent
scores; its :meth:`~ShadowAccumulator.snapshot` is plain JSON, so the snapshots of
several worker processes can be merged (:func:`merge`) and summarized
(:func:`summarize`) by the CLI. SciPy's rank statistics are used when SciPy is
installed; NumPy implementations (tested against SciPy) serve otherwise.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

SMOOTHING = 0.5  # pseudo-count per histogram bin: KL stays finite when a bin is empty on one side


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray(sums[inverse] / counts[inverse])


def spearman_numpy(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _rankdata(a), _rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def kendall_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b by pairwise signs: O(n^2), fine for one request's candidates."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), k=1)
    sa, sb = da[upper], db[upper]
    concordant_minus_discordant = float((sa * sb).sum())
    denom = float(np.sqrt(np.count_nonzero(sa) * np.count_nonzero(sb)))
    return concordant_minus_discordant / denom if denom > 0 else float("nan")


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:  # SciPy is optional on the serving path
        return None
    return stats


def rank_correlations(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Spearman, Kendall tau-b) of two score vectors; NaN when either is constant or shorter than 2."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    stats = _scipy_stats()
    if stats is None:
        return spearman_numpy(a, b), kendall_numpy(a, b)
    return float(stats.spearmanr(a, b).statistic), float(stats.kendalltau(a, b).statistic)


def kl_divergence(p_samples: np.ndarray, q_samples: np.ndarray, bins: int = 20) -> float:
    """KL(P || Q) in nats between two samples, on equal-width bins over the pooled 1st..99th percentile
    (outliers go to the end bins). Equal widths, not quantile bins: a handful of distinct scores (few
    candidates, repeated) would otherwise get bins narrower than the models' differences."""
    p_samples = np.asarray(p_samples, dtype=np.float64)
    q_samples = np.asarray(q_samples, dtype=np.float64)
    if len(p_samples) == 0 or len(q_samples) == 0:
        return float("nan")
    low, high = np.percentile(np.concatenate([p_samples, q_samples]), [1.0, 99.0])
    if not high > low:
        return 0.0  # (nearly) every score identical on both sides
    edges = np.linspace(low, high, bins + 1)
    p = np.histogram(np.clip(p_samples, low, high), edges)[0] + SMOOTHING
    q = np.histogram(np.clip(q_samples, low, high), edges)[0] + SMOOTHING
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def standardized(scores: np.ndarray) -> np.ndarray:
    """Scores of one request as z-scores (all zeros when they are all equal)."""
    values = np.asarray(scores, dtype=np.float64)
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


class ShadowAccumulator:
    """Running comparison of champion and challenger scores (thread-safe: the shadow
    worker adds, the HTTP thread reads)."""

    def __init__(self, window: int = 5000) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.spearman_sum = self.kendall_sum = 0.0
        self.correlated = 0  # requests where the correlations are defined
        self.top1_agree = 0
        self.champion: deque[float] = deque(maxlen=window)
        self.challenger: deque[float] = deque(maxlen=window)
        self.champion_z: deque[float] = deque(maxlen=window)
        self.challenger_z: deque[float] = deque(maxlen=window)

    def add(self, champion: np.ndarray, challenger: np.ndarray) -> float:
        """Record one request; returns its Spearman correlation (NaN if undefined)."""
        spearman, kendall = rank_correlations(champion, challenger)
        with self._lock:
            self.requests += 1
            if not np.isnan(spearman):
                self.correlated += 1
                self.spearman_sum += spearman
                self.kendall_sum += kendall
            self.top1_agree += int(np.argmax(champion) == np.argmax(challenger))
            self.champion.extend(np.asarray(champion, dtype=np.float64).tolist())
            self.challenger.extend(np.asarray(challenger, dtype=np.float64).tolist())
            self.champion_z.extend(standardized(champion).tolist())
            self.challenger_z.extend(standardized(challenger).tolist())
        return spearman

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "correlated": self.correlated,
                "spearman_sum": self.spearman_sum,
                "kendall_sum": self.kendall_sum,
                "top1_agree": self.top1_agree,
                "champion_scores": list(self.champion),
                "challenger_scores": list(self.challenger),
                "champion_z": list(self.champion_z),
                "challenger_z": list(self.challenger_z),
            }


def merge(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' snapshots as one (sums add, score windows concatenate)."""
    total: dict[str, Any] = {
        "requests": 0,
        "correlated": 0,
        "spearman_sum": 0.0,
        "kendall_sum": 0.0,
        "top1_agree": 0,
        "champion_scores": [],
        "challenger_scores": [],
        "champion_z": [],
        "challenger_z": [],
    }
    for snap in snapshots:
        for key in ("requests", "correlated", "spearman_sum", "kendall_sum", "top1_agree"):
            total[key] += snap.get(key, 0)
        for key in ("champion_scores", "challenger_scores", "champion_z", "challenger_z"):
            total[key] += list(snap.get(key, []))
    return total


def summarize(snapshot: dict[str, Any], bins: int = 20) -> dict[str, Any]:
    """The figures a person (and :func:`rankops.release.decisions.shadow_decision`) looks at."""
    champion = np.asarray(snapshot.get("champion_scores", []), dtype=np.float64)
    challenger = np.asarray(snapshot.get("challenger_scores", []), dtype=np.float64)
    champion_z = np.asarray(snapshot.get("champion_z", []), dtype=np.float64)
    challenger_z = np.asarray(snapshot.get("challenger_z", []), dtype=np.float64)
    correlated = int(snapshot.get("correlated", 0))
    requests = int(snapshot.get("requests", 0))

    def mean_std(x: np.ndarray) -> list[float | None]:
        return [float(x.mean()), float(x.std())] if len(x) else [None, None]

    return {
        "requests": requests,
        "spearman_mean": snapshot["spearman_sum"] / correlated if correlated else None,
        "kendall_mean": snapshot["kendall_sum"] / correlated if correlated else None,
        "top1_agreement": snapshot["top1_agree"] / requests if requests else None,
        "kl_divergence": kl_divergence(champion_z, challenger_z, bins)
        if len(champion_z) and len(challenger_z)
        else None,
        "raw_kl_divergence": kl_divergence(champion, challenger, bins) if len(champion) and len(challenger) else None,
        "champion_score_mean_std": mean_std(champion),
        "challenger_score_mean_std": mean_std(challenger),
    }
