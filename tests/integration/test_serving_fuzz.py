"""Fuzzing the HTTP adapter: no body, content type or header produces a 5xx, and the
app keeps answering well-formed requests afterwards."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rankops.serving.schema import INLINE_FEATURES
from rankops.serving.server import build_server
from tests import serving_helpers as h

CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "text/csv", "", "x/y; a=b", "\u00e9"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
ITEMS = [*h.item_ids(80), "nope", "i-" + "9" * 30, "\u00e9\u00e8"]


@st.composite
def near_valid(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    """A valid request (unknown items and inline features included), then 0-2 fields broken."""
    count = draw(st.integers(1, 55))
    candidates = draw(st.lists(st.sampled_from(ITEMS), min_size=count, max_size=count, unique=True))
    doc: dict = {  # type: ignore[type-arg]
        "user_id": draw(st.text(min_size=1, max_size=20)),
        "candidates": candidates,
        "context": {"category": draw(st.sampled_from([*h.CATEGORIES, "unknown", ""])), "device": "mobile"},
    }
    if draw(st.booleans()):
        doc["ts"] = draw(st.floats(allow_nan=False) | st.integers(-(2**53), 2**53))
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(INLINE_FEATURES), unique=True, max_size=len(INLINE_FEATURES)))
        value = st.none() | st.floats(allow_nan=False) | st.integers(-(2**60), 2**60)
        doc["features"] = {n: draw(st.lists(value, min_size=count, max_size=count)) for n in names}
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["user_id", "candidates", "context", "ts", "features", "extra"]))
        doc[key] = draw(JSON_VALUES)
    return doc


VARIANT_HEADER = st.none() | st.sampled_from(["champion", "challenger", "previous", "", "blue"])


@pytest.fixture(scope="module")
def client(serving_home):  # type: ignore[no-untyped-def]
    server = build_server(
        serving_home.settings.model_copy(
            update={
                "serving": serving_home.settings.serving.model_copy(
                    update={"max_candidates": 50, "max_body_bytes": 20_000}
                )
            }
        )
    )
    c = h.AsgiClient(server.app)
    yield c
    c.close()
    server.ranker.lookup.close()


def post(client, body: bytes, content_type: str, variant: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"content-type": content_type.encode()} if content_type else {}  # raw bytes: any header value
    if variant is not None:
        headers["x-rankops-variant"] = variant.encode()
    return client.post("/invocations", content=body, headers=headers)


def check(response, doc: object = None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, response.text
    payload = response.json()
    if response.status_code == 200:
        assert isinstance(doc, dict)
        assert [r["item_id"] for r in payload["ranking"]] and {r["item_id"] for r in payload["ranking"]} == set(
            doc["candidates"]
        )
    else:
        assert 400 <= response.status_code < 500 and payload["error"]


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.binary(max_size=400), content_type=CONTENT_TYPES)
def test_arbitrary_bytes(client, body: bytes, content_type: str) -> None:  # type: ignore[no-untyped-def]
    check(post(client, body, content_type))


@FUZZ
@given(doc=JSON_VALUES)
def test_arbitrary_json(client, doc: object) -> None:  # type: ignore[no-untyped-def]
    check(post(client, json.dumps(doc).encode(), "application/json"), doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=near_valid(), variant=VARIANT_HEADER)
def test_near_valid_requests(client, doc: dict, variant: str | None) -> None:  # type: ignore[no-untyped-def,type-arg]
    response = post(client, json.dumps(doc).encode(), "application/json", variant)
    event(f"status {response.status_code}")
    check(response, doc)


def test_limits_and_the_app_keeps_serving(client) -> None:  # type: ignore[no-untyped-def]
    big = orjson.dumps(h.request(10, extra_padding="x" * 30_000))
    assert post(client, big, "application/json").status_code == 413
    many = post(client, orjson.dumps(h.request(51)), "application/json")
    assert many.status_code == 413 and "at most 50" in many.json()["error"]
    lying = client.post(
        "/invocations", content=b"{}", headers={"content-type": "application/json", "content-length": "9999999"}
    )
    assert lying.status_code == 413
    assert post(client, b"", "application/json").status_code == 400
    assert client.get("/invocations").status_code == 405
    ok = post(client, orjson.dumps(h.request(10)), "application/json")
    assert ok.status_code == 200 and ok.json()["variant"] == "champion"
    assert client.get("/ping").status_code == 200
