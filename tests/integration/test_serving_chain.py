"""The ranking core with real models, a real embedded store and real failures:
the fallback chain, inline features, routing (sticky canary, shadow, forced variant)."""

from __future__ import annotations

import numpy as np
import pytest

from rankops.errors import RequestError
from rankops.serving import model as models
from rankops.serving.core import Ranker
from rankops.serving.routing import Routing
from rankops.serving.schema import RankRequest
from rankops.serving.server import build_server, guarded_lookup
from rankops.serving.shadow import ShadowScorer
from tests import serving_helpers as h


def rank_request(count: int = 10, user: str = "u-1", **kwargs: object) -> RankRequest:
    doc = h.request(count, user)
    return RankRequest(doc["user_id"], doc["candidates"], doc["context"], h.NOW, **kwargs)  # type: ignore[arg-type]


def sample_count(ranker: Ranker, name: str, **labels: str) -> float:
    value = ranker.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def server(serving_home):  # type: ignore[no-untyped-def]
    built = build_server(serving_home.settings)
    yield built
    built.ranker.lookup.close()


def test_champion_ranks_with_stored_features(server, serving_home) -> None:  # type: ignore[no-untyped-def]
    response = server.ranker.rank(rank_request(12))
    assert (response["variant"], response["model_version"], response["fallback"]) == (
        "champion",
        serving_home.versions["good"],
        None,
    )
    scores = [r["score"] for r in response["ranking"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    assert {r["item_id"] for r in response["ranking"]} == set(h.item_ids(12))
    # the same rows scored directly by the registered booster give the same scores
    champion = server.ranker.routing.champion
    # registered without a compiled artifact (as versions before compiled scoring): served by LightGBM
    assert champion.engine == "lightgbm" and champion.scorer and champion.scorer.reason == "no compiled artifact"
    columns = {name: values[:12] for name, values in h.stored_columns(300, 0).items()}
    from rankops.features import on_demand

    columns.update(on_demand.compute(columns, h.NOW, on_demand.category_code("toys")))
    direct = champion.booster.predict(np.column_stack([columns[n] for n in champion.feature_names]))
    by_item = {r["item_id"]: r["score"] for r in response["ranking"]}
    np.testing.assert_allclose([by_item[i] for i in h.item_ids(12)], direct)


def test_unknown_items_get_registry_defaults_and_are_counted(server) -> None:  # type: ignore[no-untyped-def]
    request = RankRequest("u-1", ["i-1", "nope-1", "nope-2"], {"category": "toys"}, h.NOW)
    response = server.ranker.rank(request)
    assert response["variant"] == "champion"
    assert sample_count(server.ranker, "rankops_candidates_missing_features_total") == 2
    assert sample_count(server.ranker, "rankops_candidates_total") == 3


def test_inline_features_skip_the_store_and_score_the_same(server) -> None:  # type: ignore[no-untyped-def]
    inline = {name: values[:5] for name, values in h.stored_columns(300, 0).items()}
    fetched = server.ranker.rank(rank_request(5))
    reads = sample_count(server.ranker, "rankops_feature_fetch_seconds_count", store="embedded")
    supplied = server.ranker.rank(rank_request(5, features=inline))
    assert sample_count(server.ranker, "rankops_feature_fetch_seconds_count", store="embedded") == reads
    assert supplied["ranking"] == fetched["ranking"]


def corrupt(store_path) -> None:  # type: ignore[no-untyped-def]
    for suffix in ("", "-wal", "-shm"):
        path = store_path.with_name(store_path.name + suffix)
        if path.exists():
            path.write_bytes(b"this is not a database" * 100)


def test_a_failed_store_degrades_to_input_order_then_recovers(serving_copy, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("WARNING", "rankops.serving")
    settings = serving_copy.settings
    server = build_server(settings)
    ranker = server.ranker
    # the champion answers for other items: the item snapshot never saw the ones asked for below,
    # so it cannot stand in for the store (tests/integration/test_serving_redis.py: when it can)
    others = h.request(10, start=100)
    assert ranker.rank(RankRequest("u-1", others["candidates"], others["context"], h.NOW))["variant"] == "champion"
    store_file = settings.home / "online" / "features.sqlite"
    backup = {p.name: p.read_bytes() for p in store_file.parent.iterdir()}
    ranker.lookup.close()
    corrupt(store_file)
    guarded = ranker.lookup.stores["item"]
    for entity in ("item", "seller", "category"):
        guarded.store._pointers.forget(entity)  # drop the cached live versions, as the 1 s recheck would

    failures = settings.serving.breaker_failures
    answers = [ranker.rank(rank_request()) for _ in range(failures + 3)]
    # every input of the rule sits in the failed store: the answer says input_order, not "rule"
    assert {a["variant"] for a in answers} == {"input_order"}
    # the caller gets coarse codes; what failed, and why, is in the server's log
    assert all(a["model_version"] is None and "store_unavailable:item" in a["fallback"] for a in answers)
    codes = answers[0]["fallback"].split("; ")
    assert {"features_unavailable:champion", "features_unavailable:fallback", "features_unavailable:rule"} <= set(codes)
    assert "rule skipped: category_match, ctr_7d, image_quality_score unavailable" in caplog.text
    assert "features unavailable: " in caplog.text and "answered by input_order" in caplog.text
    assert [r["item_id"] for r in answers[0]["ranking"]] == h.item_ids(10)
    assert sample_count(ranker, "rankops_fallback_total", variant="champion", level="input_order") == failures + 3
    assert sample_count(ranker, "rankops_fallback_total", variant="champion", level="rule") == 0
    assert sample_count(ranker, "rankops_store_errors_total", store="embedded", reason="error") == failures
    assert sample_count(ranker, "rankops_store_errors_total", store="embedded", reason="circuit_open") == 3
    assert answers[-1]["fallback"] == answers[0]["fallback"], "an open circuit is the same outage to the caller"

    # one of the rule's inputs inline: the rule ranks by it, and says so
    quality = [0.1 * k for k in range(10)]
    ruled = ranker.rank(rank_request(features={"image_quality_score": quality}))
    assert ruled["variant"] == "rule" and [r["item_id"] for r in ruled["ranking"]] == h.item_ids(10)[::-1]

    # inline values for what the fallback model reads let it answer while the store is down
    inline = {"ctr_7d": [0.1 * k for k in range(10)], "category_code": [-1.0] * 10}
    guarded.breaker.opened_at -= 10  # the reset period has passed: one trial read is allowed (and fails)
    degraded = ranker.rank(rank_request(features=inline))
    assert degraded["variant"] == "fallback" and degraded["model_version"] == serving_copy.versions["fallback"]

    for name, content in backup.items():
        (store_file.parent / name).write_bytes(content)
    ranker.lookup.close()
    guarded.breaker.opened_at -= 10
    recovered = ranker.rank(rank_request())
    assert recovered["variant"] == "champion", recovered["fallback"]
    assert guarded.breaker.state == "closed"


def test_a_model_that_cannot_score_falls_back_to_the_fallback_model(serving_home) -> None:  # type: ignore[no-untyped-def]
    settings = serving_home.settings
    good = models.load_version(settings, serving_home.versions["good"], "champion")
    broken = models.LoadedModel(good.booster, good.version, "champion", good.feature_names[:-1])  # one column short
    fallback = models.load_fallback(settings)
    ranker = Ranker(guarded_lookup(settings, _metrics()), Routing(broken), fallback)
    answer = ranker.rank(rank_request())
    assert answer["variant"] == "fallback" and answer["model_version"] == serving_home.versions["fallback"]
    assert answer["fallback"] == "score_failed:champion"

    no_models = Ranker(guarded_lookup(settings, _metrics()), Routing(None), None)
    answer = no_models.rank(rank_request())
    assert answer["variant"] == "rule" and answer["fallback"] == "model_missing:champion; model_missing:fallback"
    scores = [r["score"] for r in answer["ranking"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1, "the rule ranks by stored features"


def _metrics():  # type: ignore[no-untyped-def]
    from rankops.monitoring.metrics import ServingMetrics

    return ServingMetrics()


def test_canary_routing_is_sticky_and_near_the_share(serving_home) -> None:  # type: ignore[no-untyped-def]
    settings = serving_home.settings
    champion = models.load_version(settings, serving_home.versions["good"], "champion")
    challenger = models.load_version(settings, serving_home.versions["challenger"], "challenger")
    ranker = Ranker(
        guarded_lookup(settings, _metrics()), Routing(champion, challenger, mode="canary", canary_share=0.3, salt="s")
    )
    users = [f"u-{k}" for k in range(400)]
    first = {u: ranker.rank(rank_request(3, u))["model_version"] for u in users}
    again = {u: ranker.rank(rank_request(3, u))["model_version"] for u in users}
    assert first == again, "one user always sees one model"
    in_canary = sum(v == challenger.version for v in first.values())
    assert 0.22 < in_canary / len(users) < 0.38
    assert sample_count(ranker, "rankops_request_seconds_count", variant="challenger", outcome="ok") == 2 * in_canary


def test_forced_variants(serving_home) -> None:  # type: ignore[no-untyped-def]
    settings = serving_home.settings
    champion = models.load_version(settings, serving_home.versions["good"], "champion")
    previous = models.load_version(settings, serving_home.versions["challenger"], "previous")
    ranker = Ranker(guarded_lookup(settings, _metrics()), Routing(champion, previous=previous))
    answer = ranker.rank(rank_request(target_variant="previous"))
    assert (answer["variant"], answer["model_version"]) == ("previous", previous.version)
    with pytest.raises(RequestError, match="no challenger model is loaded"):
        ranker.rank(rank_request(target_variant="challenger"))


def test_shadow_scores_off_the_request_path_and_compares(serving_home) -> None:  # type: ignore[no-untyped-def]
    settings = serving_home.settings
    metrics = _metrics()
    champion = models.load_version(settings, serving_home.versions["good"], "champion")
    bad = models.load_version(settings, serving_home.versions["bad"], "challenger")
    shadow = ShadowScorer(metrics, capacity=500)
    ranker = Ranker(
        guarded_lookup(settings, metrics), Routing(champion, bad, mode="shadow"), metrics=metrics, shadow=shadow
    )
    shadow.start()
    try:
        answers = [ranker.rank(rank_request(20, f"u-{k}")) for k in range(60)]
        shadow.drain()
    finally:
        shadow.stop()
    assert {a["variant"] for a in answers} == {"champion"}, "users only ever see the champion"
    summary = ranker.describe()["shadow"]
    assert summary["requests"] == 60 and summary["challenger"] == bad.version
    assert summary["spearman_mean"] < 0, "a model trained on inverted labels ranks the other way"
    assert sample_count(ranker, "rankops_shadow_total", outcome="scored") == 60
