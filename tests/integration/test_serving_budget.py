"""Store reads within the latency budget: a slow store is read once with a timeout that fits the
budget, a read the remaining budget cannot cover is skipped, and a failed joined store (seller)
only takes its own features away: a level that does not read them still answers."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from rankops.features.online.embedded import EmbeddedStore
from rankops.serving.schema import RankRequest
from rankops.serving.server import build_server
from tests import serving_helpers as h
from tests.conftest import make_settings


class SlowEndpoint:
    """An HTTP endpoint that answers every request after ``delay_s`` (a DynamoDB in trouble)."""

    def __init__(self, delay_s: float) -> None:
        self.requests = 0
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                endpoint.requests += 1
                self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(delay_s)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up long ago

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SlowEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def rank_request(count: int = 10) -> RankRequest:
    doc = h.request(count)
    return RankRequest(doc["user_id"], doc["candidates"], doc["context"], h.NOW)


def test_a_300_ms_store_is_read_once_and_the_request_stays_in_budget(serving_home, aws_credentials, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("WARNING", "rankops.serving")
    with SlowEndpoint(0.3) as slow:
        settings = make_settings(
            serving_home.settings.home,
            online_store={
                "routing__seller": "dynamodb",
                "dynamodb__endpoint_url": slow.url,
                "dynamodb__region": "eu-west-1",
            },
        )
        server = build_server(settings)  # the serving path builds its own store clients
        try:
            answer = server.ranker.rank(rank_request())
        finally:
            server.ranker.lookup.close()
    assert slow.requests == 1, "one attempt: no retry of a slow read"
    # the seller's features are unavailable; the fallback model reads none of them and answers
    assert (answer["variant"], answer["model_version"]) == ("fallback", serving_home.versions["fallback"])
    assert answer["fallback"] == "store_unavailable:seller; features_unavailable:champion"
    assert "features unavailable: dynamodb store version lookup failed" in caplog.text  # details: the log only
    assert "timeout" in caplog.text.lower() and "champion skipped: seller_" in caplog.text
    # how long that takes is a figure for benchmarks/serving.py's fault phases, not an assertion here


class Wrapped:
    """An embedded store with a delay per read and a count of the calls it got."""

    def __init__(self, store: EmbeddedStore, delay_s: float = 0.0, worst_call_s: float = 0.0) -> None:
        self.store = store
        self.kind = self.name = store.kind
        self.delay_s = delay_s
        self.worst_call_s = worst_call_s
        self.calls = 0

    def active_version(self, entity: str) -> Any:
        self.calls += 1
        return self.store.active_version(entity)

    def read_many(self, requests: Mapping[str, list[str]]) -> dict[str, list[bytes | None]]:
        self.calls += 1
        time.sleep(self.delay_s)
        return self.store.read_many(requests)

    def close(self) -> None:
        self.store.close()


def test_a_read_the_remaining_budget_cannot_cover_is_skipped(serving_home, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("WARNING", "rankops.serving")
    settings = serving_home.settings
    path = settings.home / "online" / "features.sqlite"
    budget_s = settings.serving.latency_budget_ms / 1000
    # items take two thirds of the budget; a seller read may take half of it: it cannot fit any more
    items = Wrapped(EmbeddedStore(path), delay_s=budget_s * 2 / 3)
    sellers = Wrapped(EmbeddedStore(path), worst_call_s=budget_s / 2)
    categories = Wrapped(EmbeddedStore(path))
    server = build_server(settings, stores={"item": items, "seller": sellers, "category": categories})  # type: ignore[dict-item]
    try:
        answer = server.ranker.rank(rank_request())
        assert sellers.calls == 0, "the deadline skipped the seller store"
        assert categories.calls > 0
        assert answer["variant"] == "fallback", answer["fallback"]
        assert answer["fallback"] == "store_unavailable:seller; features_unavailable:champion"
        assert "read of seller skipped" in caplog.text and "of the latency budget left" in caplog.text

        items.delay_s = 0.0  # with time to spare every store is read and the champion answers
        answer = server.ranker.rank(rank_request())
        assert answer["variant"] == "champion" and sellers.calls > 0, answer["fallback"]
    finally:
        server.ranker.lookup.close()
