"""Registry verbs on a real MLflow (sqlite): aliases, promotion with `previous`, tag lookup, archiving."""

from datetime import UTC, datetime, timedelta

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from rankops import registry
from rankops.config import Settings
from rankops.errors import ModelError


def tiny_booster(seed: int) -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.random((200, 3)), columns=["price", "ctr_7d", "category_match"])
    data = lgb.Dataset(x.to_numpy(), label=rng.random(200), feature_name=list(x.columns))
    return lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1}, data, num_boost_round=3), x


def log(settings: Settings, seed: int, key: str) -> str:
    booster, x = tiny_booster(seed)
    registered = registry.log_ranker(
        settings, booster, params={"seed": seed}, metrics={"ndcg@10": 0.5}, history={"valid_ndcg@10": [0.4, 0.5]},
        input_example=x.head(3), tags={"purpose": "test"},
    )  # fmt: skip
    registry.set_version_tags(settings, registered.version, {registry.IDEMPOTENCY_TAG: key})
    return registered.version


def test_aliases_promotion_lookup_and_archiving(settings: Settings) -> None:
    assert registry.aliases(settings) == {} and registry.alias_version(settings, "champion") is None
    with pytest.raises(ModelError, match="holds alias 'champion'"):
        registry.load_booster(settings)
    v1, v2 = log(settings, 1, "k1"), log(settings, 2, "k2")
    assert (v1, v2) == ("1", "2")
    assert registry.find_version(settings, registry.IDEMPOTENCY_TAG, "k2") == "2"
    assert registry.find_version(settings, registry.IDEMPOTENCY_TAG, "k3") is None

    assert registry.promote(settings, "1") == {"champion": None, "challenger": None, "previous": None}
    registry.set_alias(settings, registry.CHALLENGER, "2")
    registry.promote(settings, "2")
    assert registry.aliases(settings) == {"champion": "2", "previous": "1"}, "the challenger alias is consumed"
    registry.promote(settings, "2")
    assert registry.aliases(settings) == {"champion": "2", "previous": "1"}, "re-promoting changes nothing"
    booster, version = registry.load_booster(settings)
    assert version == "2" and booster.num_trees() == 3

    v3, v4 = log(settings, 3, "k3"), log(settings, 4, "k4")
    later = datetime.now(UTC) + timedelta(days=settings.mlflow.archive_after_days + 1)
    assert registry.archive_stale(settings, now=datetime.now(UTC)) == []
    assert [(a.name, a.version) for a in registry.archive_stale(settings, now=later)] == [
        (settings.mlflow.model_name, v3)
    ], "v4 holds no alias either, but it is the newest version: the one in use"
    assert registry.archive_stale(settings, now=later) == [], "archiving twice changes nothing"
    registry.set_alias(settings, registry.PREVIOUS, v3)  # e.g. a rollback target chosen by hand
    registry.archive_stale(settings, now=later)
    rows = {v.version: v for v in registry.list_versions(settings, [settings.mlflow.model_name])}
    assert not rows[v3].archived and rows[v3].aliases == ("previous",)
    assert not rows[v4].archived and rows[v4].aliases == ()
    assert rows["1"].archived and rows["1"].tags[registry.ARCHIVED_AT_TAG] == later.isoformat()
    assert [v.version for v in registry.list_versions(settings, [settings.mlflow.model_name])] == ["4", "3", "2", "1"]


def test_the_newest_version_of_a_model_without_aliases_is_never_archived(settings: Settings) -> None:
    """The rule baseline: registered once per revision of its code, in use, never holding an alias."""
    name = registry.rule_model_name(settings)
    client, _ = registry.connect(settings)
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, "file:///nowhere", tags={"rule_code": "x"})
    registry.set_version_tags(
        settings, "2", {registry.ARCHIVED_TAG: "true", "archived_at": "then"}, name
    )  # old code did
    later = datetime.now(UTC) + timedelta(days=settings.mlflow.archive_after_days + 15)
    archived = registry.archive_stale(settings, [name], now=later)
    assert [(a.name, a.version) for a in archived] == [(name, "1")]
    rows = {v.version: v for v in registry.list_versions(settings, [name])}
    assert rows["1"].archived and not rows["2"].archived, "the newest is un-archived, like a version regaining an alias"
