"""Coarse reasons to callers, fuzzed: whatever the request and whichever stores fail (a Redis and a
DynamoDB endpoint whose URLs carry a password, on ports nothing listens on), no response body
holds a URL, a host, a password or an exception's text; the details reach the server log only,
the password redacted."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankops.serving import reasons
from rankops.serving.guard import GuardedStore
from rankops.serving.server import build_server
from tests import serving_helpers as h
from tests.conftest import make_settings
from tests.integration.test_serving_fuzz import JSON_VALUES, near_valid

PASSWORD = "s3cr3t-Pa55word"
# what a store error's text carries and a caller must never see (unless the caller sent it)
# (case-sensitive: "Error" as in StoreError or ConnectionError, not a 4xx body's "error" key)
LEAKS = (PASSWORD, "127.0.0.1", "://", "redis", "dynamodb", "Error", "Traceback", "Errno", "timed out", "refused")
CODE = re.compile(r"^(store_unavailable:\w+|features_failed|(model_missing|features_unavailable|score_failed):\w+)$")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# which entities live in an unreachable store, per server
OUTAGES = {
    "none": {},
    "item (redis)": {"item": "redis"},
    "seller (dynamodb)": {"seller": "dynamodb"},
    "seller and category": {"seller": "dynamodb", "category": "redis"},
}


@pytest.fixture(scope="module")
def servers(serving_home, aws_environment):  # type: ignore[no-untyped-def]
    built = {}
    for name, routing in OUTAGES.items():
        overrides = {f"routing__{entity}": store for entity, store in routing.items()}
        overrides |= {
            "redis__url": f"redis://:{PASSWORD}@127.0.0.1:{closed_port()}/0",
            "dynamodb__endpoint_url": f"http://admin:{PASSWORD}@127.0.0.1:{closed_port()}",
            "dynamodb__region": "eu-west-1",
        }
        settings_ = make_settings(serving_home.settings.home, online_store=overrides)
        built[name] = build_server(settings_)
    yield built
    for server in built.values():
        server.ranker.lookup.close()


@pytest.fixture(scope="module")
def clients(servers) -> Iterator[dict[str, h.AsgiClient]]:  # type: ignore[no-untyped-def]
    made = {name: h.AsgiClient(server.app) for name, server in servers.items()}
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def aws_environment() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        patch.setenv(key, "testing")
    patch.delenv("AWS_PROFILE", raising=False)
    yield
    patch.undo()


def check(body: bytes, status: int, sent: bytes) -> None:
    assert status < 500
    text = body.decode()
    echoed = sent.decode(errors="replace")
    for leak in LEAKS:
        assert leak not in text or leak in echoed, (leak, text)
    if status == 200:
        reason = json.loads(text)["fallback"]
        assert reason is None or all(CODE.match(code) for code in reason.split("; ")), reason


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(outage=st.sampled_from(sorted(OUTAGES)), doc=near_valid() | JSON_VALUES)
def test_no_response_leaks_a_store_error(clients, outage: str, doc: object) -> None:  # type: ignore[no-untyped-def]
    sent = json.dumps(doc).encode()
    response = clients[outage].post("/invocations", content=sent, headers={"content-type": "application/json"})
    check(response.content, response.status_code, sent)


def test_outages_answer_with_codes_and_log_the_details_redacted(servers, clients, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, "rankops.serving")
    for server in servers.values():  # the fuzzing above already logged these outages once
        server.ranker.details = reasons.DetailLog()
        for store in server.ranker.lookup.stores.values():  # and may have opened a circuit: the store's
            if isinstance(store, GuardedStore):  # own error (with its URL) is what this test reads
                store.breaker.success()
    body = json.dumps(h.request(10)).encode()
    answers = {}
    for outage, client in clients.items():
        response = client.post("/invocations", content=body, headers={"content-type": "application/json"})
        check(response.content, response.status_code, body)
        answers[outage] = response.json()
    assert answers["none"]["fallback"] is None
    assert answers["item (redis)"]["fallback"].startswith("store_unavailable:item; ")
    assert answers["seller (dynamodb)"]["fallback"].startswith("store_unavailable:seller; ")
    assert answers["seller and category"]["variant"] == "fallback"
    assert "store_unavailable:seller; store_unavailable:category" in answers["seller and category"]["fallback"]
    assert "127.0.0.1" in caplog.text, "the details are in the server log"
    assert PASSWORD not in caplog.text and ":***@" in caplog.text
