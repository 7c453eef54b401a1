"""The rule-based baseline: a ranking that needs no trained model.

The score is the product of the factors the registry declares (``rule=RuleFactor(...)``
on a feature): today smoothed, position-debiased CTR times a bonus for good images and a
match with the query category. The inference server falls back to it when no model can
score, and evaluation reports it beside the learned models. Pure NumPy over the same
feature columns the models see.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rankops.features import registry

RULE_INPUTS: tuple[str, ...] = tuple(f.name for f in registry.rule_features())


def rule_factors() -> list[tuple[str, registry.RuleFactor]]:
    """``(feature name, factor)`` of every feature that declares a rule factor."""
    return [(f.name, f.rule) for f in registry.rule_features() if f.rule is not None]


def rule_scores(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Product over the declared factors of ``offset + value`` (a missing value counts as the
    factor's ``missing``); missing inputs are registry defaults upstream."""
    scores: np.ndarray | None = None
    for name, rule in rule_factors():
        value = np.asarray(columns[name], dtype=np.float64)
        if rule.missing is not None:
            value = np.nan_to_num(value, nan=rule.missing)
        term = value + rule.offset if rule.offset else value
        scores = term if scores is None else scores * term
    if scores is None:
        raise ValueError("no feature declares a rule factor; the rule baseline has nothing to score")
    return scores
