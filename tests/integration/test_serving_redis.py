"""A real Redis outage under the server: stopped (refused connections) and frozen
(timeouts). Requests keep getting answers within the budget, the fallback counter
rises, and the champion is back once Redis returns."""

from __future__ import annotations

from pathlib import Path

from benchmarks.serving_store import PrivateRedis, redis_store, seed_items
from rankops.serving.server import build_server
from tests import serving_helpers as h

# Latency figures live in benchmarks/serving.py (its fault phases); here "no hang, no retry storm" is
# asserted by events: every request answers (a hang would hit pytest's timeout) and the circuit
# breaker opens, so later requests skip the store instead of waiting on it.


def test_server_rides_out_a_redis_outage(serving_home, redis_target, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    private = PrivateRedis(tmp_path / "redis")
    private.start()
    try:
        store = redis_store(private.url, redis_target.prefix, timeout_ms=50, recheck_seconds=0.0)
        seed_items(store, h.item_ids(300), h.item_features(300), "v1")
        server = build_server(serving_home.settings, stores={"item": store})
        client = h.AsgiClient(server.app)
        breaker = server.ranker.lookup.stores["item"].breaker

        def ask() -> tuple[dict, None]:  # type: ignore[type-arg]
            response = client.post("/invocations", json=h.request(20))
            assert response.status_code == 200, response.text
            return response.json(), None

        assert ask()[0]["variant"] == "champion"

        private.stop()  # refused connections: fast failures
        down = [ask() for _ in range(20)]
        # every input of the rule lives in Redis: the chain answers in input order, and says so
        assert {a["variant"] for a, _ in down} == {"input_order"}
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
        assert {a["variant"] for a, _ in frozen} == {"input_order"}
        open_after = metrics.get_sample_value(
            "rankops_store_errors_total", {"store": "redis", "reason": "circuit_open"}
        )
        assert open_after - (open_before or 0) >= 5, "once open, the circuit skips the frozen store"
        private.resume()
        breaker.opened_at -= 60
        assert ask()[0]["variant"] == "champion"

        assert metrics.get_sample_value("rankops_fallback_total", {"variant": "champion", "level": "input_order"}) == 32
        assert metrics.get_sample_value("rankops_store_errors_total", {"store": "redis", "reason": "circuit_open"}) > 0
        client.close()
    finally:
        private.stop()
