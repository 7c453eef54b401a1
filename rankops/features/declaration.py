"""The vocabulary of feature declarations: what a declaration is made of.

The declarations themselves (every entity and feature, the single source of truth) are in
:mod:`rankops.features.registry`, which re-exports these types; this module holds only the
shapes, so the registry stays a readable list. A declaration carries everything code needs
to use the feature without naming it: how Spark computes it (``compute``), the function an
on-demand feature applies to its ``inputs`` (``function``) and its part in the rule
baseline (``rule``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

FeatureKind = Literal["aggregate", "attribute", "catalog", "on_demand", "stream"]
Measure = Literal["impressions", "clicks", "examinations", "contacts"]
CatalogColumn = Literal["price", "log_price", "image_quality", "created_at_s", "category_code"]


@dataclass(frozen=True)
class Entity:
    """Something features describe, identified by one key column of the raw data.

    ``joins`` name entities whose keys are stored *with* this entity's record (the
    item record carries its seller and category), so serving reaches them from a
    candidate item id with one more batched read per store.
    """

    name: str
    key: str
    description: str
    joins: tuple[str, ...] = ()


# -- how a stored feature is computed (compiled to Spark by rankops.features.spark) -----------
@dataclass(frozen=True)
class WindowSum:
    """Sum of a per-event measure over the trailing window (complete hours only)."""

    measure: Measure


@dataclass(frozen=True)
class SmoothedRatio:
    """``(sum(numerator) + prior * k) / (sum(denominator) + k)`` over the trailing window;
    the prior is the feature's default and ``k`` the named ``features.*`` setting."""

    numerator: Measure
    denominator: Measure
    strength_setting: str = "ctr_prior_strength"


@dataclass(frozen=True)
class Attribute:
    """A column of the entity's own catalog row (known from the listing's creation on)."""

    column: CatalogColumn


@dataclass(frozen=True)
class CatalogCount:
    """Listings of the entity that exist at the feature time."""


@dataclass(frozen=True)
class CatalogMean:
    column: CatalogColumn


@dataclass(frozen=True)
class CatalogStd:
    column: CatalogColumn


Computation = WindowSum | SmoothedRatio | Attribute | CatalogCount | CatalogMean | CatalogStd | None


@dataclass(frozen=True)
class RuleFactor:
    """A feature's factor in the rule baseline: ``offset + value`` (a missing value counts as
    ``missing``; ``None`` keeps it missing). The rule's score is the product of the factors
    of every feature that declares one (:func:`rankops.training.baseline.rule_scores`)."""

    offset: float = 0.0
    missing: float | None = None


@dataclass(frozen=True)
class Feature:
    """One feature. An on-demand feature's ``function`` is called as
    ``function(request, *columns)`` with one float column per name in ``inputs`` (in that
    order) and a :class:`rankops.features.transforms.OnDemandRequest`."""

    name: str
    entity: str
    kind: FeatureKind
    description: str
    default: float
    compute: Computation = None
    window: timedelta | None = None
    dtype: Literal["float64"] = "float64"
    valid_range: tuple[float, float] = (float("-inf"), float("inf"))
    freshness_sla: timedelta = timedelta(hours=3)
    owner: str = "ranking-team"
    inputs: tuple[str, ...] = ()
    model_input: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    function: Callable[..., Any] | None = None
    rule: RuleFactor | None = None
