"""Every level of the fallback chain checks its scores are finite before it answers: a model
whose trees yield NaN hands the request to the next level, and so does the rule baseline when a
stored value makes its score non-finite."""

from __future__ import annotations

import numpy as np

from rankops.features import registry as features
from rankops.features.online.embedded import EmbeddedStore
from rankops.features.online.packing import pack_rows
from rankops.monitoring.metrics import ServingMetrics
from rankops.serving import model as models
from rankops.serving.core import Ranker
from rankops.serving.routing import Routing
from rankops.serving.schema import RankRequest
from rankops.serving.server import guarded_lookup
from tests import serving_helpers as h


def request(count: int = 10) -> RankRequest:
    doc = h.request(count)
    return RankRequest(doc["user_id"], doc["candidates"], doc["context"], h.NOW)


def nan_model(good: models.LoadedModel) -> models.LoadedModel:
    """The champion with every leaf value NaN: a real LightGBM booster whose scores are all NaN."""
    import lightgbm as lgb

    def nan_leaves(line: str) -> str:
        if not line.startswith("leaf_value="):
            return line
        return "leaf_value=" + " ".join("nan" for _ in line.split("=", 1)[1].split())

    lines = [
        nan_leaves(line)
        for line in good.booster.model_to_string().splitlines()
        if not line.startswith("tree_sizes=")  # byte offsets of the trees: parsed in order without them
    ]
    booster = lgb.Booster(model_str="\n".join(lines) + "\n")
    assert np.isnan(booster.predict(np.zeros((1, booster.num_feature())))).all()
    return models.LoadedModel(booster, good.version, "champion", good.feature_names)


def test_a_model_scoring_nan_hands_over_to_the_fallback_model(serving_home) -> None:  # type: ignore[no-untyped-def]
    settings = serving_home.settings
    good = models.load_version(settings, serving_home.versions["good"], "champion")
    ranker = Ranker(
        guarded_lookup(settings, ServingMetrics()), Routing(nan_model(good)), models.load_fallback(settings)
    )
    answer = ranker.rank(request())
    assert (answer["variant"], answer["fallback"]) == ("fallback", "score_failed:champion")
    assert all(np.isfinite(r["score"]) for r in answer["ranking"])
    ranker.lookup.close()


def test_a_rule_score_made_non_finite_by_a_stored_value_hands_over_to_input_order(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings = serving_copy.settings
    names = features.stored_names("item")
    values = h.item_features(10)
    values[3, names.index("ctr_7d")] = np.inf  # a stored value no validation caught
    store = EmbeddedStore(settings.home / "online" / "features.sqlite")
    joins = [[h.seller_of(k), h.category_of(k)] for k in range(10)]
    store.write_batch("item", "v2", h.item_ids(10), pack_rows("v2", values, joins))
    store.activate("item", "v2", names, features.joined_entities("item"))
    store.close()
    ranker = Ranker(guarded_lookup(settings, ServingMetrics()), Routing(None), None)
    answer = ranker.rank(request())
    assert answer["variant"] == "input_order"
    assert answer["fallback"] == "model_missing:champion; model_missing:fallback; score_failed:rule"
    assert [r["item_id"] for r in answer["ranking"]] == h.item_ids(10)
    ranker.lookup.close()
