"""The feature declarations: the single source of truth.

Each feature is declared once, as data (the types are in
:mod:`rankops.features.declaration`): its entity, how it is computed (a small spec the
Spark job compiles, see :mod:`rankops.features.spark`), its default for missing values,
valid range, freshness SLA and owner. The Spark job, the validation gate, the
point-in-time training join, materialization and the online lookup all iterate over
these declarations. An *on-demand* feature (it depends on the request: its time, its
context) declares its inputs and its function (:mod:`rankops.features.transforms`),
applied by :mod:`rankops.features.on_demand` for the training-set builder and the server
alike; the rule baseline's factors are declared here too. Nothing else in ``rankops/``
names a feature (tests/unit/test_feature_names.py checks). Which online store serves an
entity is configuration (``online_store.routing``), not declaration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta

from rankops.features import transforms
from rankops.features.declaration import (
    Attribute,
    CatalogColumn,
    CatalogCount,
    CatalogMean,
    CatalogStd,
    Computation,
    Entity,
    Feature,
    FeatureKind,
    Measure,
    RuleFactor,
    SmoothedRatio,
    WindowSum,
)

__all__ = [  # the declaration types, re-exported: code names them as registry.Feature etc.
    "Attribute",
    "CatalogColumn",
    "CatalogCount",
    "CatalogMean",
    "CatalogStd",
    "Computation",
    "Entity",
    "Feature",
    "FeatureKind",
    "Measure",
    "RuleFactor",
    "SmoothedRatio",
    "WindowSum",
]

ENTITIES: dict[str, Entity] = {
    "item": Entity("item", "item_id", "A listing in the marketplace.", joins=("seller", "category")),
    "seller": Entity("seller", "seller_id", "The seller of listings."),
    "category": Entity("category", "category", "A listing category (the query category of a search)."),
    "user": Entity("user", "user_id", "A searching user (no stored features yet)."),
    "request": Entity("request", "request_id", "A search request: its time and context (query category, device)."),
}

WINDOW_7D = timedelta(days=7)
WINDOW_15M, WINDOW_1H, STREAM_SLIDE, STREAM_SLA = (timedelta(minutes=m) for m in (15, 60, 5, 5))
WINDOW_30D = timedelta(days=30)
_CTR = SmoothedRatio("clicks", "examinations")


def _stream(name: str, entity: str, compute: Computation, window: timedelta, text: str, dflt: float = 0.0) -> Feature:
    """A streaming feature (rankops.features.streaming); not a model input until training computes it."""
    valid = (0.0, 1.0 if isinstance(compute, SmoothedRatio) else float("inf"))
    return Feature(name, entity, "stream", text, dflt, compute, window, "float64", valid, STREAM_SLA, model_input=False)


FEATURES: tuple[Feature, ...] = (
    # -- item ---------------------------------------------------------------------------------
    Feature(
        "ctr_7d",
        "item",
        "aggregate",
        "Clicks over position-weighted impressions in the last 7 days, smoothed towards the prior "
        "(features.ctr_prior_strength pseudo-impressions): an estimate of the click rate at position 1.",
        default=0.1,
        compute=_CTR,
        window=WINDOW_7D,
        valid_range=(0.0, 1.0),
        freshness_sla=timedelta(hours=2),
        tags={"fast_moving": "true"},
        rule=RuleFactor(),
    ),
    Feature(
        "impressions_7d",
        "item",
        "aggregate",
        "Times the item was shown in the last 7 days.",
        default=0.0,
        compute=WindowSum("impressions"),
        window=WINDOW_7D,
        valid_range=(0.0, float("inf")),
        freshness_sla=timedelta(hours=2),
        tags={"fast_moving": "true"},
    ),
    Feature(
        "image_quality_score",
        "item",
        "attribute",
        "Image quality score of the listing, 0..1.",
        default=0.5,
        compute=Attribute("image_quality"),
        valid_range=(0.0, 1.0),
        freshness_sla=timedelta(days=1),
        rule=RuleFactor(offset=0.5, missing=0.5),
    ),
    Feature(
        "price",
        "item",
        "attribute",
        "Listed price.",
        default=0.0,
        compute=Attribute("price"),
        valid_range=(0.0, float("inf")),
        freshness_sla=timedelta(days=1),
    ),
    Feature(
        "created_at_s",
        "item",
        "attribute",
        "Listing creation time, epoch seconds (input of days_since_creation).",
        default=float("nan"),
        compute=Attribute("created_at_s"),
        freshness_sla=timedelta(days=1),
        model_input=False,
    ),
    Feature(
        "category_code",
        "item",
        "attribute",
        "CRC-32 of the item's category (input of category_match).",
        default=-1.0,
        compute=Attribute("category_code"),
        freshness_sla=timedelta(days=1),
        model_input=False,
    ),
    # -- seller -------------------------------------------------------------------------------
    Feature(
        "seller_avg_contact_rate",
        "seller",
        "aggregate",
        "Contacts per click on the seller's listings in the last 30 days, smoothed towards the prior "
        "(features.contact_prior_strength pseudo-clicks).",
        default=0.35,
        compute=SmoothedRatio("contacts", "clicks", "contact_prior_strength"),
        window=WINDOW_30D,
        valid_range=(0.0, 1.0),
        freshness_sla=timedelta(hours=26),
        owner="marketplace-quality",
    ),
    Feature(
        "seller_ctr_30d",
        "seller",
        "aggregate",
        "Position-debiased, smoothed click-through rate of the seller's listings over 30 days.",
        default=0.1,
        compute=_CTR,
        window=WINDOW_30D,
        valid_range=(0.0, 1.0),
        freshness_sla=timedelta(hours=26),
        owner="marketplace-quality",
    ),
    Feature(
        "seller_item_count",
        "seller",
        "catalog",
        "Listings the seller has created so far.",
        default=0.0,
        compute=CatalogCount(),
        valid_range=(0.0, float("inf")),
        freshness_sla=timedelta(hours=26),
        owner="marketplace-quality",
    ),
    # -- category -----------------------------------------------------------------------------
    Feature(
        "category_ctr_7d",
        "category",
        "aggregate",
        "Position-debiased, smoothed click-through rate of the category's listings over 7 days.",
        default=0.1,
        compute=_CTR,
        window=WINDOW_7D,
        valid_range=(0.0, 1.0),
        freshness_sla=timedelta(hours=2),
        tags={"fast_moving": "true"},
    ),
    Feature(
        "category_mean_price",
        "category",
        "catalog",
        "Mean listed price of the category's listings so far (input of price_deviation_from_category_mean).",
        default=float("nan"),
        compute=CatalogMean("price"),
        valid_range=(0.0, float("inf")),
        freshness_sla=timedelta(days=1),
        model_input=False,
    ),
    Feature(
        "category_log_price_mean",
        "category",
        "catalog",
        "Mean log price of the category's listings so far (input of price_z_in_category).",
        default=float("nan"),
        compute=CatalogMean("log_price"),
        freshness_sla=timedelta(days=1),
        model_input=False,
    ),
    Feature(
        "category_log_price_std",
        "category",
        "catalog",
        "Standard deviation of the log price in the category so far (input of price_z_in_category).",
        default=float("nan"),
        compute=CatalogStd("log_price"),
        valid_range=(0.0, float("inf")),
        freshness_sla=timedelta(days=1),
        model_input=False,
    ),
    _stream("item_clicks_15m", "item", WindowSum("clicks"), WINDOW_15M, "Clicks on the item, last 15 min."),
    _stream("item_impressions_15m", "item", WindowSum("impressions"), WINDOW_15M, "Item shown, last 15 min."),
    _stream("item_clicks_1h", "item", WindowSum("clicks"), WINDOW_1H, "Clicks on the item in the last hour."),
    _stream("item_impressions_1h", "item", WindowSum("impressions"), WINDOW_1H, "Item shown in the last hour."),
    _stream("item_ctr_1h", "item", SmoothedRatio("clicks", "impressions"), WINDOW_1H, "Smoothed CTR, last hour.", 0.1),
    _stream("seller_contacts_1h", "seller", WindowSum("contacts"), WINDOW_1H, "Seller's contacts, last hour."),
    # -- request time -------------------------------------------------------------------------
    Feature(
        "days_since_creation",
        "request",
        "on_demand",
        "Age of the listing at request time, in days.",
        default=float("nan"),
        valid_range=(0.0, float("inf")),
        inputs=("created_at_s",),
        tags={"measures": "item_age_days"},  # the evaluation's new-item segment
        function=transforms.age_days,
    ),
    Feature(
        "category_match",
        "request",
        "on_demand",
        "1 if the item's category is the query category, else 0.",
        default=0.0,
        valid_range=(0.0, 1.0),
        inputs=("category_code",),
        function=transforms.matches_query_category,
        rule=RuleFactor(offset=1.0, missing=0.0),
    ),
    Feature(
        "price_deviation_from_category_mean",
        "request",
        "on_demand",
        "Price relative to the category's mean price: price / mean - 1.",
        default=float("nan"),
        inputs=("price", "category_mean_price"),
        function=transforms.relative_deviation,
    ),
    Feature(
        "price_z_in_category",
        "request",
        "on_demand",
        "Where the price sits in its category: z-score of the log price (a smooth price rank).",
        default=float("nan"),
        inputs=("price", "category_log_price_mean", "category_log_price_std"),
        function=transforms.log_z_score,
    ),
)
_BY_NAME = {f.name: f for f in FEATURES}


def feature(name: str) -> Feature:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; declared features: {', '.join(_BY_NAME)}") from None


def stored_features(entity: str) -> list[Feature]:
    """Features the batch job materializes for ``entity`` (not on-demand, not stream), in storage order."""
    return [f for f in FEATURES if f.entity == entity and f.kind not in ("on_demand", "stream")]


def stored_names(entity: str) -> list[str]:
    return [f.name for f in stored_features(entity)]


def stored_entities() -> list[str]:
    """Entities with stored features, in declaration order (joined entities after the item)."""
    return [e for e in ENTITIES if stored_features(e)]


def join_keys(entity: str) -> list[str]:
    """Key columns of the entities reachable from ``entity`` (stored with its record)."""
    return [ENTITIES[j].key for j in ENTITIES[entity].joins if stored_features(j)]


def joined_entities(entity: str) -> list[str]:
    return [j for j in ENTITIES[entity].joins if stored_features(j)]


def windows(entity: str) -> list[timedelta]:
    """Distinct aggregate windows of an entity, shortest first."""
    return sorted({f.window for f in stored_features(entity) if f.window is not None})


def max_window() -> timedelta:
    """The longest aggregate window: how much event history an incremental run must read."""
    return max((f.window for f in FEATURES if f.window is not None), default=timedelta(0))


def on_demand_features() -> list[Feature]:
    return [f for f in FEATURES if f.kind == "on_demand"]


def rule_features() -> list[Feature]:
    """Features with a factor in the rule baseline, in declaration order."""
    return [f for f in FEATURES if f.rule is not None]


def measuring(quantity: str) -> str:
    """Name of the feature tagged ``measures=quantity`` (e.g. ``item_age_days``)."""
    names = [f.name for f in FEATURES if f.tags.get("measures") == quantity]
    if len(names) != 1:
        raise KeyError(f"expected one feature tagged measures={quantity!r}, found {names or 'none'}")
    return names[0]


def model_features() -> list[str]:
    """Model input columns, in the order the model expects them."""
    return [f.name for f in FEATURES if f.model_input]


def defaults() -> dict[str, float]:
    return {f.name: f.default for f in FEATURES}


def _plain(value: object) -> object:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if callable(value):  # an on-demand feature's function, by its importable name
        return f"{value.__module__}.{getattr(value, '__qualname__', repr(value))}"
    return value


def declarations() -> list[dict[str, object]]:
    """The declarations as JSON-ready data (for manifests, reports and the version hash)."""
    out = []
    for f in FEATURES:
        row = {k: _plain(v) for k, v in asdict(f).items()}
        row["compute"] = {"type": type(f.compute).__name__, **asdict(f.compute)} if f.compute is not None else None
        out.append(row)
    return out


_VERSION_CACHE: list[tuple[list[object], str, str]] = []  # (the declarations hashed, parameters, version)


def feature_set_version(computation: dict[str, object] | None = None) -> str:
    """Content hash of the declarations (and computation parameters): a new version
    whenever what a stored value means changes. Remembered for the same declaration objects
    (frozen) and parameters: rendering the declarations costs milliseconds, and every offline
    dataset name asks for it (materialization asked ~4 times per entity)."""
    params = json.dumps(computation or {}, sort_keys=True, default=str)
    current: list[object] = [*FEATURES, *ENTITIES.items()]
    for hashed, cached_params, version in _VERSION_CACHE:
        if cached_params == params and len(hashed) == len(current) and all(map(_same, hashed, current)):
            return version
    version = _feature_set_version(computation)
    _VERSION_CACHE[:] = [(current, params, version)]
    return version


def _same(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):  # (entity name, entity)
        return a[0] == b[0] and a[1] is b[1]
    return a is b


def _feature_set_version(computation: dict[str, object] | None = None) -> str:
    payload = {
        "entities": {n: asdict(e) for n, e in ENTITIES.items()},
        "features": declarations(),
        "computation": computation or {},
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return "v" + digest[:10]
