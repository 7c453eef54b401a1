"""The rule-based baseline: a ranking that needs no trained model.

Smoothed, position-debiased CTR times a bonus for good images and a match with
the query category. The inference server falls back to it when no model can
score, and evaluation reports it beside the learned models. Pure NumPy over the
same feature columns the models see.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

RULE_INPUTS: tuple[str, ...] = ("ctr_7d", "image_quality_score", "category_match")


def rule_scores(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """``ctr_7d * (0.5 + image_quality) * (1 + category_match)``; missing inputs are registry defaults upstream."""
    ctr = np.asarray(columns["ctr_7d"], dtype=np.float64)
    quality = np.asarray(columns["image_quality_score"], dtype=np.float64)
    match = np.asarray(columns["category_match"], dtype=np.float64)
    return ctr * (0.5 + np.nan_to_num(quality, nan=0.5)) * (1.0 + np.nan_to_num(match, nan=0.0))
