"""A real Redis outage under the server: stopped (refused connections) and frozen
(timeouts). Requests keep getting answers within the budget, from the fallback model
reading the server's item snapshot (a ranking, not the input order), the fallback
counter rises, and the champion is back once Redis returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.serving_store import PrivateRedis, redis_store, seed_items
from rankops.features import on_demand
from rankops.features import registry as features
from rankops.serving.server import build_server
from rankops.training.metrics import ndcg_at_k
from tests import serving_helpers as h

# Latency figures live in benchmarks/serving.py (its fault phases); here "no hang, no retry storm" is
# asserted by events: every request answers (a hang would hit pytest's timeout) and the circuit
# breaker opens, so later requests skip the store instead of waiting on it.


def _ndcg(answer: dict, relevance: dict[str, int]) -> float:  # type: ignore[type-arg]
    """NDCG@10 of one answer's order against the fixture's graded relevance."""
    ids = [r["item_id"] for r in answer["ranking"]]
    order = -np.arange(len(ids), dtype=float)  # the answer's order as scores
    return ndcg_at_k(np.array([relevance[i] for i in ids]), order, np.array([len(ids)]), k=10)


def _relevance(values: np.ndarray, category: str) -> dict[str, int]:
    """The fixture's utility (tests/serving_helpers.model_frame, without noise), graded 0..4."""
    names = features.stored_names("item")
    ctr, quality, code = (values[:, names.index(n)] for n in ("ctr_7d", "image_quality_score", "category_code"))
    match = (code == on_demand.category_code(category)).astype(float)
    grades = np.clip(np.round(8 * ctr + quality + 1.5 * match), 0, 4).astype(int)
    return dict(zip(h.item_ids(len(values)), grades.tolist(), strict=True))


def test_server_rides_out_a_redis_outage(serving_home, redis_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    private = PrivateRedis(tmp_path / "redis")
    private.start()
    try:
        store = redis_store(private.url, redis_target.prefix, timeout_ms=50, recheck_seconds=0.0)
        values = h.item_features(300)
        # seeded with a patient client: a fresh server on a loaded machine can miss 50 ms
        seeder = redis_store(private.url, redis_target.prefix, timeout_ms=5000)
        seed_items(seeder, h.item_ids(300), values, "v1")
        seeder.close()
        server = build_server(serving_home.settings, stores={"item": store})
        client = h.AsgiClient(server.app)
        breaker = server.ranker.lookup.stores["item"].breaker

        def ask() -> tuple[dict, None]:  # type: ignore[type-arg]
            response = client.post("/invocations", json=h.request(20))
            assert response.status_code == 200, response.text
            return response.json(), None

        normal = ask()[0]
        assert normal["variant"] == "champion"
        relevance = _relevance(values, "toys")

        private.stop()  # refused connections: fast failures
        down = [ask() for _ in range(20)]
        # the store is gone, the snapshot of what the server read is not: the fallback model ranks
        answers = [a for a, _ in down]
        assert {a["variant"] for a in answers} == {"fallback"}, answers[0]["fallback"]
        # coarse codes for the caller (rankops.serving.reasons): the store that failed, the snapshot used
        assert answers[0]["fallback"].split("; ") == [
            "store_unavailable:item",
            "features_unavailable:champion",
            "item_snapshot",
        ]
        assert {r["item_id"] for r in answers[0]["ranking"]} == set(h.request(20)["candidates"])
        input_order = {"ranking": [{"item_id": i} for i in h.request(20)["candidates"]]}
        assert _ndcg(answers[0], relevance) > _ndcg(input_order, relevance) + 0.1, "a ranking, not the input order"
        assert breaker.state == "open", "refused connections open the circuit: no retry storm"

        private.start()  # restarted with its data (append-only file)
        breaker.opened_at -= 60  # the reset period has passed
        back = ask()[0]
        assert back["variant"] == "champion", back["fallback"]

        private.pause()  # the port accepts, nothing answers: reads time out
        metrics = server.ranker.metrics.registry
        open_before = metrics.get_sample_value(
            "rankops_store_errors_total", {"store": "redis", "reason": "circuit_open"}
        )
        frozen = [ask() for _ in range(12)]
        assert {a["variant"] for a, _ in frozen} == {"fallback"}
        open_after = metrics.get_sample_value(
            "rankops_store_errors_total", {"store": "redis", "reason": "circuit_open"}
        )
        assert open_after - (open_before or 0) >= 5, "once open, the circuit skips the frozen store"
        private.resume()
        breaker.opened_at -= 60
        assert ask()[0]["variant"] == "champion"

        assert metrics.get_sample_value("rankops_fallback_total", {"variant": "champion", "level": "fallback"}) == 32
        assert metrics.get_sample_value("rankops_store_errors_total", {"store": "redis", "reason": "circuit_open"}) > 0
        client.close()
    finally:
        private.stop()
