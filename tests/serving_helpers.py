"""Building blocks for serving and release tests: a seeded online store and small real
LightGBM rankers registered in a real MLflow (sqlite) registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rankops import registry
from rankops.config import Settings
from rankops.features import on_demand, samples
from rankops.features import registry as features
from rankops.features.online.embedded import EmbeddedStore
from rankops.features.online.packing import pack_rows
from rankops.training.baseline import rule_scores

CATEGORIES = ("toys", "vehicles", "furniture")
NOW = 1_800_000_000.0


def item_ids(count: int) -> list[str]:
    return [f"i-{k}" for k in range(count)]


def seller_of(k: int) -> str:
    return f"s-{k % 20}"


def category_of(k: int) -> str:
    return CATEGORIES[k % len(CATEGORIES)]


def item_features(count: int, seed: int = 0) -> np.ndarray:
    """Stored item features in registry order, plausible values (item ``k`` is in ``category_of(k)``)."""
    return samples.stored_values("item", count, seed, NOW, CATEGORIES)


def entity_features(entity: str, keys: list[str], seed: int = 0) -> np.ndarray:
    """Stored seller or category features in registry order, plausible values."""
    return samples.stored_values(entity, len(keys), seed + (1 if entity == "seller" else 2), NOW)


def _write(
    store: EmbeddedStore,
    entity: str,
    version: str,
    keys: list[str],
    values: np.ndarray,
    joins: list[list[str | None]] | None = None,
) -> None:
    join_names = features.joined_entities(entity)
    store.write_batch(entity, version, keys, pack_rows(version, values, joins))
    store.activate(entity, version, features.stored_names(entity), join_names)


def seed_store(settings: Settings, count: int = 300, seed: int = 0, version: str = "v1") -> np.ndarray:
    """Items (joined to 20 sellers and 3 categories), sellers and categories in the embedded store."""
    store = EmbeddedStore(settings.home / "online" / "features.sqlite")
    values = item_features(count, seed)
    joins = [[seller_of(k), category_of(k)] for k in range(count)]
    order = features.joined_entities("item")
    _write(
        store,
        "item",
        version,
        item_ids(count),
        values,
        [[row[["seller", "category"].index(e)] for e in order] for row in joins],
    )
    sellers = sorted({seller_of(k) for k in range(count)})
    _write(store, "seller", version, sellers, entity_features("seller", sellers, seed))
    _write(store, "category", version, list(CATEGORIES), entity_features("category", list(CATEGORIES), seed))
    store.close()
    return values


def stored_columns(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Every stored feature of ``rows`` candidates, items joined to their seller and category."""
    stored = item_features(rows, seed)
    columns = {n: stored[:, i] for i, n in enumerate(features.stored_names("item"))}
    sellers = sorted({seller_of(k) for k in range(rows)})
    for entity, keys, of in (("seller", sellers, seller_of), ("category", list(CATEGORIES), category_of)):
        table = entity_features(entity, keys, seed)
        index = np.array([keys.index(of(k)) for k in range(rows)])
        columns.update({n: table[index, i] for i, n in enumerate(features.stored_names(entity))})
    return columns


def model_frame(rows: int, seed: int, names: list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """Rows of model features with a graded label driven by ctr, quality and category match."""
    rng = np.random.default_rng(seed)
    columns = stored_columns(rows, seed)
    query = np.array([on_demand.category_code(CATEGORIES[k]) for k in rng.integers(0, 3, rows)])
    columns.update(on_demand.compute(columns, NOW, query))
    frame = pd.DataFrame({n: columns[n] for n in (names or features.model_features())})
    utility = 8 * rule_scores(columns)  # the label follows the rule baseline's inputs (and noise)
    label = np.clip(np.round(utility + rng.normal(0, 0.3, rows)), 0, 4).astype(int)
    return frame, label, [20] * (rows // 20)


def tiny_booster(seed: int = 0, trees: int = 20, names: list[str] | None = None, invert: bool = False) -> Any:
    import lightgbm as lgb

    frame, label, groups = model_frame(2000, seed, names)
    if invert:
        label = label.max() - label
    params = {"objective": "lambdarank", "num_leaves": 7, "min_data_in_leaf": 10, "verbosity": -1, "seed": seed}
    params["num_threads"] = 1
    dataset = lgb.Dataset(frame.to_numpy(), label, group=groups, feature_name=list(frame.columns))
    return lgb.train(params, dataset, num_boost_round=trees)


def register(settings: Settings, booster: Any, alias: str | None = None, name: str | None = None) -> str:
    frame, _, _ = model_frame(40, 1, list(booster.feature_name()))
    registered = registry.log_ranker(
        settings,
        booster,
        params={"trees": booster.num_trees()},
        metrics={},
        history={},
        input_example=frame.head(3),
        tags={"test": "serving"},
        registered_name=name,
    )
    if alias:
        registry.set_alias(settings, alias, registered.version, name)
    return registered.version


def request(count: int = 10, user: str = "u-1", category: str = "toys", start: int = 0, **extra: Any) -> dict[str, Any]:
    candidates = [f"i-{k}" for k in range(start, start + count)]
    return {"user_id": user, "context": {"category": category, "device": "mobile"}, "candidates": candidates, **extra}


def copy_home(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


class AsgiClient:
    """A synchronous client for an ASGI app in-process (httpx + ASGITransport on a private loop).
    The app's lifespan is not run: tests start what they need explicitly."""

    def __init__(self, app: Any) -> None:
        import asyncio

        import httpx

        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rankops.test")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._loop.run_until_complete(self._client.request(method, path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()
