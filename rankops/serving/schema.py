"""The wire format of ``POST /invocations``, parsed and validated in one place.

Request::

    {"user_id": "u-17", "context": {"category": "furniture", "device": "mobile"},
     "candidates": ["i-1", "i-2"]}

Response::

    {"ranking": [{"item_id": "i-2", "score": 0.93}, ...], "model_version": "7",
     "variant": "champion", "fallback": null}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from rankops.errors import RequestError

JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class RankRequest:
    user_id: str
    candidates: list[str]
    context: dict[str, Any] = field(default_factory=dict)
    ts: float | None = None  # request time (epoch seconds); defaults to now


def parse_request(body: bytes, content_type: str | None, max_candidates: int, max_body_bytes: int) -> RankRequest:
    """Decode and validate; every failure is a ``RequestError`` naming the problem."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES:
        raise RequestError(f"unsupported content type {content_type!r}; send application/json", status=415)
    if len(body) > max_body_bytes:
        raise RequestError(f"request body is {len(body)} bytes; the limit is {max_body_bytes}", status=413)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise RequestError(f"malformed JSON: {err}") from None
    if not isinstance(doc, dict):
        raise RequestError("the request must be a JSON object with user_id, context and candidates")
    unknown = set(doc) - {"user_id", "context", "candidates", "ts"}
    if unknown:
        raise RequestError(f"unknown field(s) {sorted(unknown)}; expected user_id, context, candidates, ts")
    user_id = doc.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise RequestError("user_id must be a non-empty string")
    context = doc.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise RequestError('context must be an object, e.g. {"category": "furniture"}')
    candidates = doc.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise RequestError("candidates must be a non-empty list of item ids")
    if len(candidates) > max_candidates:
        raise RequestError(f"{len(candidates)} candidates; at most {max_candidates} are allowed", status=413)
    if not all(isinstance(c, str) and c for c in candidates):
        raise RequestError("every candidate must be a non-empty string item id")
    if len(set(candidates)) != len(candidates):
        raise RequestError("candidates contain duplicate item ids")
    ts = doc.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float)):
        raise RequestError("ts must be a number (epoch seconds)")
    category = context.get("category")
    if category is not None and not isinstance(category, str):
        raise RequestError("context.category must be a string")
    return RankRequest(user_id, candidates, context, float(ts) if ts is not None else None)


def encode(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
