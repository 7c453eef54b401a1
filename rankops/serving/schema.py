"""The wire format of ``POST /invocations``, parsed and validated in one place.

Request::

    {"user_id": "u-17", "context": {"category": "furniture", "device": "mobile"},
     "candidates": ["i-1", "i-2"]}

Optional request fields: ``request_id`` (a string of at most 128 characters; generated when
absent, returned in the response; outcomes join the feedback log on it), ``ts`` (request
time, epoch seconds; default now) and
``features``, stored item features supplied inline, one list per feature aligned
with ``candidates`` (``null`` = missing, the registry default is used; any other value must be
finite and inside the feature's registry ``valid_range``, else 400 naming it)::

    "features": {"ctr_7d": [0.12, null], "price": [30.0, 12.5]}

Inline values win over the online store; when every stored feature is inline
the store is not read at all.

Response::

    {"ranking": [{"item_id": "i-2", "score": 0.93}, ...], "model_version": "7",
     "variant": "champion", "fallback": null, "request_id": "4f0c..."}

``variant`` is the level of the fallback chain that answered (``champion``,
``challenger``, ``fallback``, ``rule``, ``input_order``); ``fallback`` is
``null`` or why a lower level answered, as coarse codes (:mod:`rankops.serving.reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from rankops.errors import RequestError
from rankops.features import registry

JSON_TYPES = ("application/json",)
FIELDS = ("user_id", "context", "candidates", "ts", "features", "request_id")
MAX_REQUEST_ID = 128
VARIANTS = ("champion", "challenger", "previous")
INLINE_FEATURES = tuple(f.name for f in registry.stored_features("item"))
_INLINE_DEFAULTS = {f.name: f.default for f in registry.stored_features("item")}
_INLINE_RANGES = {f.name: f.valid_range for f in registry.stored_features("item")}


@dataclass(frozen=True)
class RankRequest:
    user_id: str
    candidates: list[str]
    context: dict[str, Any] = field(default_factory=dict)
    ts: float | None = None  # request time (epoch seconds); defaults to now
    features: dict[str, np.ndarray] = field(default_factory=dict)  # inline stored features, aligned with candidates
    target_variant: str | None = None  # force a variant (SageMaker's TargetVariant), e.g. for pre-traffic checks
    request_id: str | None = None  # the caller's id; the server generates one when absent


def parse_request(
    body: bytes, content_type: str | None, max_candidates: int, max_body_bytes: int, target_variant: str | None = None
) -> RankRequest:
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
    unknown = set(doc) - set(FIELDS)
    if unknown:
        raise RequestError(f"unknown field(s) {sorted(unknown)}; expected {', '.join(FIELDS)}")
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
    # Set operations in C, not a Python loop per candidate (orjson makes exact str, never a subclass).
    if set(map(type, candidates)) != {str} or "" in (unique := set(candidates)):
        raise RequestError("every candidate must be a non-empty string item id")
    if len(unique) != len(candidates):
        raise RequestError("candidates contain duplicate item ids")
    ts = doc.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float)):
        raise RequestError("ts must be a number (epoch seconds)")
    category = context.get("category")
    if category is not None and not isinstance(category, str):
        raise RequestError("context.category must be a string")
    if target_variant is not None and target_variant not in VARIANTS:
        raise RequestError(f"unknown target variant {target_variant!r}; expected one of {', '.join(VARIANTS)}")
    request_id = doc.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID):
        raise RequestError(f"request_id must be a non-empty string of at most {MAX_REQUEST_ID} characters")
    inline = _inline_features(doc.get("features"), len(candidates))
    when = float(ts) if ts is not None else None
    return RankRequest(user_id, candidates, context, when, inline, target_variant, request_id)


def _inline_features(value: Any, count: int) -> dict[str, np.ndarray]:
    """``{"name": [v, ...]}`` -> float columns (``null`` -> registry default), checked name by name."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        example = f'{{"{INLINE_FEATURES[0]}": [0.1, null]}}'
        raise RequestError(f"features must be an object of per-candidate lists, e.g. {example}")
    columns: dict[str, np.ndarray] = {}
    for name, values in value.items():
        if name not in _INLINE_DEFAULTS:
            raise RequestError(
                f"unknown inline feature {name!r}; stored item features are {', '.join(INLINE_FEATURES)}"
            )
        if not isinstance(values, list) or len(values) != count:
            raise RequestError(f"features.{name} must be a list with one value per candidate ({count})")
        default = _INLINE_DEFAULTS[name]
        if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
            raise RequestError(f"features.{name} must hold numbers or null")
        column = np.array([default if v is None else v for v in values], dtype=np.float64)
        low, high = _INLINE_RANGES[name]
        bad = ~(np.isfinite(column) & (column >= low) & (column <= high))
        if bad.any():  # a model fed 1e308 answers null scores: refuse the value, naming it
            at = int(np.argmax(bad))
            raise RequestError(
                f"features.{name}[{at}] = {values[at]!r} is outside its valid range [{low:g}, {high:g}] "
                "(finite numbers only)"
            )
        columns[name] = column
    return columns


def encode(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
