"""Plausible stored feature values drawn from the declarations, without running the pipeline.

Benchmarks, load tests and tests seed online stores and build model rows with them: every
stored feature of an entity gets a value of its declared computation (a smoothed rate around
its default, a count, a catalog column's typical value), in registry order. Adding a feature
needs no edit here unless it reads a catalog column this module has no typical value for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rankops.features import on_demand, registry

DAY_S = 86_400.0
Draw = Callable[[np.random.Generator, int, float, Sequence[str | None]], np.ndarray]

# Typical values of each catalog column (rankops.features.spark.catalog derives them).
_CATALOG: dict[str, Draw] = {
    "price": lambda rng, n, now, cats: rng.gamma(2.0, 40.0, n),
    "log_price": lambda rng, n, now, cats: rng.normal(4.0, 0.5, n),
    "image_quality": lambda rng, n, now, cats: rng.random(n),
    "created_at_s": lambda rng, n, now, cats: now - rng.random(n) * 60 * DAY_S,
    "category_code": lambda rng, n, now, cats: _codes(cats, n),
}


def _codes(categories: Sequence[str | None], n: int) -> np.ndarray:
    return np.array([on_demand.category_code(categories[k % len(categories)]) for k in range(n)])


def _draw(f: registry.Feature, rng: np.random.Generator, n: int, now: float, cats: Sequence[str | None]) -> np.ndarray:
    spec = f.compute
    if isinstance(spec, registry.SmoothedRatio) and 0.0 < f.default < 1.0:
        return rng.beta(2.0, 2.0 * (1.0 - f.default) / f.default, n)  # a rate whose mean is the prior
    if isinstance(spec, registry.WindowSum):
        return rng.integers(0, 500, n).astype(np.float64)
    if isinstance(spec, registry.CatalogCount):
        return rng.integers(1, 200, n).astype(np.float64)
    if isinstance(spec, registry.CatalogStd):
        return rng.uniform(0.2, 0.6, n)  # a spread of log-scale values, the only kind declared
    if isinstance(spec, registry.Attribute | registry.CatalogMean) and spec.column in _CATALOG:
        return _CATALOG[spec.column](rng, n, now, cats)
    raise ValueError(f"no plausible values for feature {f.name!r} ({type(spec).__name__}); add its column to _CATALOG")


def stored_values(
    entity: str, count: int, seed: int, now_s: float, categories: Sequence[str | None] = (None,)
) -> np.ndarray:
    """``count`` rows of ``entity``'s stored features in registry order. Row ``k`` belongs to
    ``categories[k % len(categories)]`` (its category code); listings were created in the
    60 days before ``now_s``."""
    rng = np.random.default_rng(seed)
    features = registry.stored_features(entity)
    if not features:
        raise ValueError(f"entity {entity!r} has no stored features; stored: {', '.join(registry.stored_entities())}")
    return np.column_stack([_draw(f, rng, count, now_s, categories) for f in features])
