"""The multi-objective graded label: one definition for training and evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rankops.config_sections import LabelConfig


def objective_label(clicked: np.ndarray, contacted: np.ndarray, revenue: np.ndarray, cfg: LabelConfig) -> np.ndarray:
    """Graded relevance: weighted click + contact + purchase, rounded and capped at ``max_label``.

    Integer grades are what lambdarank's gain table (2^rel - 1) expects.
    """
    score = (
        cfg.click_weight * np.asarray(clicked, dtype=np.float64)
        + cfg.contact_weight * np.asarray(contacted, dtype=np.float64)
        + cfg.revenue_weight * (np.asarray(revenue, dtype=np.float64) > 0)
    )
    return np.clip(np.rint(score), 0, cfg.max_label).astype(np.int32)
