"""The feature declarations: the single source of truth.

Each feature is declared once, as data. The Spark job (:mod:`rankops.features.spark`)
computes the *aggregate* and *attribute* features from these declarations, the
training join and the online stores carry them by name, and *on-demand* features
(which depend on the request: its time, its context) are computed by one NumPy
function (:mod:`rankops.features.on_demand`) used both when building the training
set and when serving. Nothing else in the code base lists feature names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Literal

FeatureKind = Literal["aggregate", "attribute", "on_demand"]


@dataclass(frozen=True)
class Entity:
    """Something features describe, identified by one key column of the raw data."""

    name: str
    key: str
    description: str


@dataclass(frozen=True)
class Feature:
    """One feature. ``inputs`` name the stored columns an on-demand feature reads."""

    name: str
    entity: str
    kind: FeatureKind
    description: str
    default: float
    dtype: Literal["float64"] = "float64"
    valid_range: tuple[float, float] = (float("-inf"), float("inf"))
    freshness_sla: timedelta = timedelta(hours=3)
    owner: str = "ranking-team"
    inputs: tuple[str, ...] = ()
    model_input: bool = True
    tags: dict[str, str] = field(default_factory=dict)


ENTITIES: dict[str, Entity] = {
    "item": Entity("item", "item_id", "A listing in the marketplace."),
    "request": Entity("request", "request_id", "A search request: its time and context (query category, device)."),
}

WINDOW_7D = timedelta(days=7)

FEATURES: tuple[Feature, ...] = (
    Feature(
        "ctr_7d",
        "item",
        "aggregate",
        "Clicks over position-weighted impressions in the last 7 days, smoothed towards the prior "
        "(features.ctr_prior_strength pseudo-impressions): an estimate of the click rate at position 1.",
        default=0.1,
        valid_range=(0.0, 1.0),
        freshness_sla=timedelta(hours=2),
    ),
    Feature(
        "impressions_7d",
        "item",
        "aggregate",
        "Times the item was shown in the last 7 days.",
        default=0.0,
        valid_range=(0.0, float("inf")),
        freshness_sla=timedelta(hours=2),
    ),
    Feature(
        "image_quality_score",
        "item",
        "attribute",
        "Image quality score of the listing, 0..1.",
        default=0.5,
        valid_range=(0.0, 1.0),
        freshness_sla=timedelta(days=1),
    ),
    Feature(
        "price",
        "item",
        "attribute",
        "Listed price.",
        default=0.0,
        valid_range=(0.0, float("inf")),
        freshness_sla=timedelta(days=1),
    ),
    Feature(
        "created_at_s",
        "item",
        "attribute",
        "Listing creation time, epoch seconds (input of days_since_creation).",
        default=float("nan"),
        freshness_sla=timedelta(days=1),
        model_input=False,
    ),
    Feature(
        "category_code",
        "item",
        "attribute",
        "CRC-32 of the item's category (input of category_match).",
        default=-1.0,
        freshness_sla=timedelta(days=1),
        model_input=False,
    ),
    Feature(
        "days_since_creation",
        "request",
        "on_demand",
        "Age of the listing at request time, in days.",
        default=float("nan"),
        valid_range=(0.0, float("inf")),
        inputs=("created_at_s",),
    ),
    Feature(
        "category_match",
        "request",
        "on_demand",
        "1 if the item's category is the query category, else 0.",
        default=0.0,
        valid_range=(0.0, 1.0),
        inputs=("category_code",),
    ),
)
_BY_NAME = {f.name: f for f in FEATURES}


def feature(name: str) -> Feature:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; declared features: {', '.join(_BY_NAME)}") from None


def stored_features(entity: str) -> list[Feature]:
    """Features materialized for ``entity`` (aggregates and attributes), in storage order."""
    return [f for f in FEATURES if f.entity == entity and f.kind != "on_demand"]


def stored_entities() -> list[str]:
    return [e for e in ENTITIES if stored_features(e)]


def on_demand_features() -> list[Feature]:
    return [f for f in FEATURES if f.kind == "on_demand"]


def model_features() -> list[str]:
    """Model input columns, in the order the model expects them."""
    return [f.name for f in FEATURES if f.model_input]


def defaults() -> dict[str, float]:
    return {f.name: f.default for f in FEATURES}


def feature_set_version(computation: dict[str, object] | None = None) -> str:
    """Content hash of the declarations (and computation parameters): a new version
    whenever what a stored value means changes."""
    payload = {
        "features": [{**asdict(f), "freshness_sla": f.freshness_sla.total_seconds()} for f in FEATURES],
        "computation": computation or {},
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return "v" + digest[:10]
