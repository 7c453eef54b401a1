import orjson
import pytest

from rankops.errors import RequestError
from rankops.serving.schema import parse_request

JSON = "application/json"


def parse(doc: object, content_type: str = JSON, max_candidates: int = 5, max_body: int = 10_000):  # type: ignore[no-untyped-def]
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return parse_request(body, content_type, max_candidates, max_body)


def test_valid_request() -> None:
    req = parse({"user_id": "u-1", "context": {"category": "toys"}, "candidates": ["i-1", "i-2"], "ts": 1.5})
    assert (req.user_id, req.candidates, req.context, req.ts) == ("u-1", ["i-1", "i-2"], {"category": "toys"}, 1.5)
    assert parse({"user_id": "u", "candidates": ["i"]}, content_type="application/json; charset=utf-8").context == {}


@pytest.mark.parametrize(
    ("doc", "content_type", "status", "message"),
    [
        (b"{not json", JSON, 400, "malformed JSON"),
        ([1, 2], JSON, 400, "must be a JSON object"),
        ({"candidates": ["i"]}, JSON, 400, "user_id must be a non-empty string"),
        ({"user_id": 7, "candidates": ["i"]}, JSON, 400, "user_id must be a non-empty string"),
        ({"user_id": "u", "candidates": []}, JSON, 400, "candidates must be a non-empty list"),
        ({"user_id": "u", "candidates": "i-1"}, JSON, 400, "candidates must be a non-empty list"),
        ({"user_id": "u", "candidates": ["i", 3]}, JSON, 400, "every candidate must be a non-empty string"),
        ({"user_id": "u", "candidates": ["i", "i"]}, JSON, 400, "duplicate"),
        ({"user_id": "u", "candidates": list("abcdef")}, JSON, 413, "at most 5"),
        ({"user_id": "u", "candidates": ["i"], "context": []}, JSON, 400, "context must be an object"),
        ({"user_id": "u", "candidates": ["i"], "context": {"category": 1}}, JSON, 400, "context.category"),
        ({"user_id": "u", "candidates": ["i"], "ts": "now"}, JSON, 400, "ts must be a number"),
        ({"user_id": "u", "candidates": ["i"], "extra": 1}, JSON, 400, "unknown field"),
        ({"user_id": "u", "candidates": ["i"]}, "text/csv", 415, "unsupported content type"),
        ({"user_id": "u", "candidates": ["i"]}, None, 415, "unsupported content type"),
    ],
)
def test_bad_requests_name_the_problem(doc: object, content_type: str, status: int, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        parse(doc, content_type)
    assert caught.value.status == status


def test_oversize_body() -> None:
    with pytest.raises(RequestError, match="the limit is 10") as caught:
        parse({"user_id": "u", "candidates": ["i"]}, max_body=10)
    assert caught.value.status == 413


def test_inline_features_and_target_variant() -> None:
    body = orjson.dumps(
        {"user_id": "u", "candidates": ["a", "b"], "features": {"price": [1.5, None], "ctr_7d": [0, 1]}}
    )
    req = parse_request(body, JSON, 5, 10_000, target_variant="challenger")
    assert req.target_variant == "challenger"
    assert req.features["price"].tolist() == [1.5, 0.0], "null takes the registry default"
    assert req.features["ctr_7d"].dtype.kind == "f"


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([1, 2], "features must be an object"),
        ({"colour": [1, 2]}, "unknown inline feature 'colour'"),
        ({"price": [1]}, "one value per candidate"),
        ({"price": [1, "x"]}, "must hold numbers or null"),
        ({"price": [1, True]}, "must hold numbers or null"),
        # the registry's valid ranges (a model fed 1e308 used to answer a null score)
        ({"ctr_7d": [0.1, 1e308]}, r"features.ctr_7d\[1\] = 1e\+308 is outside its valid range \[0, 1\]"),
        ({"price": [-5, None]}, r"features.price\[0\] = -5 is outside its valid range \[0, inf\]"),
    ],
)
def test_bad_inline_features(features: object, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse({"user_id": "u", "candidates": ["a", "b"], "features": features})


def test_unknown_target_variant() -> None:
    with pytest.raises(RequestError, match="unknown target variant 'blue'"):
        parse_request(orjson.dumps({"user_id": "u", "candidates": ["a"]}), JSON, 5, 1000, target_variant="blue")
