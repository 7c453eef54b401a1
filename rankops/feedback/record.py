"""One feedback record per answer, built from its SageMaker data capture line.

The endpoint's capture in AWS and the local server's feedback log (which writes the same format,
:mod:`rankops.feedback.log`) give the same columns (:data:`SCHEMA`), so everything downstream
(drift, online metrics, off-policy evaluation) reads one table whatever produced it. ``variant`` is the cohort
the user was routed to (champion, challenger; in AWS the production variant) and
``fallback_level`` the level of the fallback chain that answered: a canary is judged on its
cohort, degraded answers included. ``propensities`` are the per-position probabilities of the
shown ranking under the serving policy: 1.0 for a deterministic ranking; ``policy`` names that
policy (``deterministic``, ``explore``, ``uniform``: rankops/serving/exploration.py).
``features`` (JSON, ``{name: [value per shown item, in the order shown]}``; null when not
known) holds what the answer was scored on, so off-policy evaluation can re-score the shown
items with another model (rankops/ope/feedback_eval.py). Only randomised answers carry it, the
only ones off-policy evaluation reads, in their response (``logged_features``,
:func:`captured_features`).
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from rankops.errors import DataError

if TYPE_CHECKING:
    from rankops.monitoring.data_capture import CapturedInvocation

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("user_id", pa.string()),
        ("context", pa.string()),  # the request's context object as JSON
        ("items", pa.list_(pa.string())),  # candidates in the order shown
        ("scores", pa.list_(pa.float64())),
        ("propensities", pa.list_(pa.float64())),
        ("variant", pa.string()),
        ("model_version", pa.string()),
        ("fallback_level", pa.string()),
        ("policy", pa.string()),
        ("features", pa.string()),
    ]
)
MAX_REQUEST_ID = 128
POLICIES = ("deterministic", "explore", "uniform")


class FeedbackError(DataError):
    """A feedback record that does not parse; the message is its quarantine reason."""


def new_request_id() -> str:
    return uuid.uuid4().hex


def _features_json(names: list[str], matrix: np.ndarray) -> str:
    """``{name: row}`` as the ``features`` column's JSON (one row of ``matrix`` per name)."""
    # One record per answer, ~2,000 numbers: json's float encoding cost the feedback thread ~1.4 ms
    # of CPU per answer, more than ranking it. orjson writes the same numbers (shortest round trip)
    # but NaN and inf as null, which no finite number prints as: in a row without inf each null is
    # a NaN (a missing value), written as json writes it; a row holding inf is left to json.
    # One orjson call for the whole object (rows as numpy views); only rows holding NaN or inf are
    # encoded apart (orjson.Fragment: text put in as is), so no scan of the whole text for "null".
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)  # orjson writes C-ordered arrays only
    infinite: list[bool] = np.isinf(matrix).any(axis=1).tolist()
    missing: list[bool] = np.isnan(matrix).any(axis=1).tolist()
    rows: dict[str, Any] = {}
    for name, row, has_inf, has_nan in zip(names, matrix, infinite, missing, strict=True):
        if has_inf:
            rows[name] = orjson.Fragment(json.dumps(row.tolist()))
        elif has_nan:
            rows[name] = orjson.Fragment(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).replace(b"null", b"NaN"))
        else:
            rows[name] = row
    return orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def from_capture(captured: CapturedInvocation) -> dict[str, Any]:
    """The record of one SageMaker data-capture line (the endpoint variant is the cohort)."""
    request, response = captured.request, captured.response
    ranking = response.get("ranking")
    if not isinstance(ranking, list) or not (
        set(map(type, ranking)) <= {dict} or all(isinstance(r, dict) for r in ranking)  # exact dicts: checked in C
    ):
        raise FeedbackError("the captured response has no ranking list")
    try:
        items = [r["item_id"] for r in ranking]
        scores = [r["score"] for r in ranking]
    except KeyError as err:
        raise FeedbackError(f"a ranking entry has no {err.args[0]}") from None
    context = request.get("context") or {}
    return validate(
        {
            "request_id": response.get("request_id") or captured.inference_id or captured.event_id,
            "ts": captured.inference_time,
            "user_id": request.get("user_id"),
            "context": json.dumps(context, sort_keys=True, default=str),
            "items": items,
            "scores": scores,
            "propensities": response.get("propensities"),
            "variant": captured.variant,
            "model_version": response.get("model_version"),
            "fallback_level": response.get("variant"),
            "policy": response.get("policy"),
            "features": captured_features(response.get("logged_features"), len(items)),
        }
    )


def captured_features(logged: Any, shown: int) -> str | None:
    """A response's ``logged_features`` (``{name: [value per shown item, in the order shown]}``,
    ``null`` for a missing value; randomised answers from a SageMaker container carry it:
    rankops/serving/exploration.py) as the ``features`` column, or ``None`` when absent."""
    if logged is None:
        return None
    if not isinstance(logged, dict) or not logged:
        raise FeedbackError("logged_features must be a non-empty object of per-item lists")
    names = sorted(logged)
    for name in names:
        values = logged[name]
        if not isinstance(values, list) or len(values) != shown:
            raise FeedbackError(f"logged_features.{name} must be a list of {shown} values, one per shown item")
        # parsed JSON holds exact int, float and None: one set of types per column, checked in C
        # (value by value, ~1,700 values per answer, this was ~80% of reading a randomised answer)
        if not set(map(type, values)) <= _NUMBER_OR_NULL and not all(map(_number_or_null, values)):
            raise FeedbackError(f"logged_features.{name} must hold numbers or null")
    matrix = np.array([logged[name] for name in names], dtype=np.float64)  # None reads as NaN
    return _features_json(names, matrix)


_NUMBER_OR_NULL = {int, float, type(None)}


def _number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def validate(record: dict[str, Any]) -> dict[str, Any]:
    """The record with defaults filled in, or :class:`FeedbackError` naming the first problem."""
    rid = record.get("request_id")
    if not isinstance(rid, str) or not rid or len(rid) > MAX_REQUEST_ID:
        raise FeedbackError(f"request_id must be a non-empty string of at most {MAX_REQUEST_ID} characters")
    if not isinstance(record.get("user_id"), str) or not record["user_id"]:
        raise FeedbackError(f"request {rid}: user_id must be a non-empty string")
    items, scores = record.get("items"), record.get("scores")
    if not isinstance(items, list) or not items or not _item_ids(items):
        raise FeedbackError(f"request {rid}: the shown items must be a non-empty list of item ids")
    shown_scores = _finite(scores, len(items))
    if shown_scores is None:
        raise FeedbackError(f"request {rid}: scores must be {len(items)} finite numbers, one per shown item")
    propensities = record.get("propensities")
    if propensities is None:
        propensities = [1.0] * len(items)  # a deterministic ranking shows each position with certainty
    shown_p = _finite(propensities, len(items))
    if shown_p is None or not ((shown_p > 0) & (shown_p <= 1)).all():
        raise FeedbackError(f"request {rid}: propensities must be {len(items)} numbers in (0, 1]")
    for key in ("variant", "fallback_level"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise FeedbackError(f"request {rid}: {key} must be a non-empty string")
    policy = record.get("policy") or "deterministic"  # answers logged before exploration existed
    if policy not in POLICIES:
        raise FeedbackError(f"request {rid}: policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy == "deterministic" and not (shown_p == 1.0).all():
        raise FeedbackError(f"request {rid}: a deterministic answer has propensity 1.0 at every position")
    version = record.get("model_version")
    if version is not None and not isinstance(version, str):
        raise FeedbackError(f"request {rid}: model_version must be a string or null")
    if not isinstance(record.get("ts"), datetime):
        raise FeedbackError(f"request {rid}: ts must be a time")
    features = record.get("features")
    if features is not None and not isinstance(features, str):
        raise FeedbackError(f"request {rid}: features must be a JSON string or null")
    return {
        **record,
        "scores": shown_scores.tolist(),  # Python floats (ints converted as float() does)
        "propensities": shown_p.tolist(),
        "policy": policy,
        "features": features,
    }


def _item_ids(items: list[Any]) -> bool:
    """Every item is a non-empty string (the server's own answers: exact ``str``, checked in C)."""
    if set(map(type, items)) == {str}:
        return "" not in items
    return all(isinstance(i, str) and i for i in items)


def _finite(values: Any, count: int) -> np.ndarray | None:
    """``values`` as float64 when it is a list of ``count`` finite numbers (bools are not), else None.
    The server's own answers (plain floats and ints) take one vectorised check; per record the
    feedback worker checked 200 numbers one by one before (docs/scoring.md)."""
    if not isinstance(values, list) or len(values) != count:
        return None
    plain = set(map(type, values)) <= {float, int}
    if not plain and not all(_finite_number(v) for v in values):
        return None
    array = np.array(values, dtype=np.float64)
    return array if np.isfinite(array).all() else None


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def to_table(records: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(records, schema=SCHEMA)
