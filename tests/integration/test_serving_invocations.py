"""``invocations`` without HTTP: bytes, content type and headers in, status and JSON out, on the
real server assembly (models from MLflow, features from the seeded store)."""

from __future__ import annotations

import orjson

from rankops.serving.invocations import TARGET_HEADER, Limits, invocations
from rankops.serving.server import build_server
from tests.serving_helpers import request


def test_the_invocations_contract(serving_home) -> None:  # type: ignore[no-untyped-def]
    server = build_server(serving_home.settings)
    ranker, limits = server.ranker, Limits(max_candidates=20, max_body_bytes=4096)
    body = orjson.dumps(request(8))
    try:
        status, answer = invocations(ranker, limits, body, "application/json; charset=utf-8", {})
        doc = orjson.loads(answer)
        assert status == 200 and doc["variant"] == "champion" and doc["fallback"] is None
        assert sorted(r["item_id"] for r in doc["ranking"]) == sorted(request(8)["candidates"])

        status, answer = invocations(ranker, limits, body, "text/csv", {})
        assert (status, orjson.loads(answer)) == (
            415,
            {"error": "unsupported content type 'text/csv'; send application/json"},
        )
        status, answer = invocations(ranker, limits, body, "application/json", {TARGET_HEADER.upper(): "blue"})
        assert status == 400 and "unknown target variant 'blue'" in orjson.loads(answer)["error"]
        status, answer = invocations(ranker, Limits(5, 4096), body, "application/json", {})
        assert status == 413 and "at most 5 are allowed" in orjson.loads(answer)["error"]
        status, answer = invocations(ranker, limits, b'{"user_id": ', "application/json", {})
        assert status == 400 and orjson.loads(answer)["error"].startswith("malformed JSON")
        status, _ = invocations(ranker, Limits(20, 64), body, "application/json", {})
        assert status == 413
    finally:
        ranker.lookup.close()
