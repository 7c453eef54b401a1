"""The multi-objective graded label: one definition for training and evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rankops.config_sections import LabelConfig


def objective_label(clicked: np.ndarray, contacted: np.ndarray, revenue: np.ndarray, cfg: LabelConfig) -> np.ndarray:
    """Graded relevance: weighted click + contact + purchase, rounded and capped at ``max_label``.

    Integer grades are what lambdarank's gain table (2^rel - 1) expects. Rounding is half up
    (0.5 -> 1, 1.5 -> 2; not NumPy's half to even), and any engagement with a positive weighted
    score grades at least 1: a small weight (``click_weight = 0.3``) lowers how much an
    engagement counts against the others, it never erases it into "not relevant" (0). A row
    with no engagement, or only engagements weighted 0, grades 0.
    """
    score = (
        cfg.click_weight * np.asarray(clicked, dtype=np.float64)
        + cfg.contact_weight * np.asarray(contacted, dtype=np.float64)
        + cfg.revenue_weight * (np.asarray(revenue, dtype=np.float64) > 0)
    )
    graded = np.where(score > 0, np.maximum(np.floor(score + 0.5), 1.0), 0.0)
    return np.clip(graded, 0, cfg.max_label).astype(np.int32)
