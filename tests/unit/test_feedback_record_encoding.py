"""The feedback record's fast paths give exactly what the general code gives: the ``features``
JSON of a whole matrix in one orjson call (vs one call per row, the previous encoding) and the
vectorised checks of ``validate`` (vs value-by-value checks), on the same inputs."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest

from rankops.feedback.record import FeedbackError, _features_json, captured_features, validate


def row_by_row(names: list[str], matrix: np.ndarray) -> str:
    """The previous encoding: one orjson call per row (json for a row holding inf)."""
    parts = []
    for name, row in zip(names, matrix, strict=True):
        if np.isinf(row).any():
            text = json.dumps(row.tolist())
        else:
            text = orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode().replace("null", "NaN")
        parts.append(orjson.dumps(name).decode() + ":" + text)
    return "{" + ",".join(parts) + "}"


def awkward_matrix(rows: int, cols: int, seed: int) -> np.ndarray:
    """Values whose text is easy to get wrong: NaN, -0.0, tiny and huge exponents, integers."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(rows, cols)) * 10.0 ** rng.integers(-12, 12, size=(rows, cols))
    matrix[rng.random((rows, cols)) < 0.1] = np.nan
    matrix[rng.random((rows, cols)) < 0.05] = -0.0
    matrix[rng.random((rows, cols)) < 0.05] = 3.0
    matrix[0, :] = 1e-7
    return matrix


@pytest.mark.parametrize(("rows", "cols"), [(17, 100), (1, 1), (3, 1), (1, 5), (2, 0)])
def test_features_json_of_the_whole_matrix_equals_the_row_by_row_encoding(rows: int, cols: int) -> None:
    names = [f"f{k}" for k in range(rows)]
    matrix = awkward_matrix(rows, cols, rows * 100 + cols) if cols else np.zeros((rows, 0))
    text = _features_json(names, matrix)
    assert text == row_by_row(names, matrix)
    decoded = json.loads(text)  # json reads NaN back
    assert list(decoded) == names
    for name, row in zip(names, matrix, strict=True):
        assert np.array_equal(np.array(decoded[name], dtype=np.float64), row, equal_nan=True)


def test_a_row_holding_inf_is_written_as_json_writes_it() -> None:
    names = ["a", "b", "c"]
    matrix = awkward_matrix(3, 6, 7)
    matrix[1, 2], matrix[2, 0] = np.inf, -np.inf
    text = _features_json(names, matrix)
    assert text == row_by_row(names, matrix)
    assert '"b":[' in text and "Infinity" in text and "-Infinity" in text


def test_captured_features_keep_the_order_shown_and_read_null_as_missing() -> None:
    text = captured_features({"z": [None, 1.0, 2], "a": [30.0, 10.0, 20.0]}, 3)
    assert text == '{"a":[30.0,10.0,20.0],"z":[NaN,1.0,2.0]}'
    with pytest.raises(FeedbackError, match=r"logged_features\.z must be a list of 2 values"):
        captured_features({"z": [1.0, 2.0, 3.0]}, 2)


@pytest.mark.parametrize("bad", [True, "1.5", [1.0], {"v": 1}])
def test_captured_features_refuse_what_is_not_a_number_or_null(bad: Any) -> None:
    with pytest.raises(FeedbackError, match=r"logged_features\.a must hold numbers or null"):
        captured_features({"a": [1.0, bad]}, 2)


def test_captured_features_of_number_subclasses_equal_those_of_plain_numbers() -> None:
    """Values parsed from JSON are exact floats and ints (the fast type check); other callers may
    pass subclasses such as numpy's float64, which the value-by-value check still accepts."""
    assert captured_features({"a": [np.float64(0.5), None, 3]}, 3) == captured_features({"a": [0.5, None, 3]}, 3)


def record(**changes: Any) -> dict[str, Any]:
    base = {"request_id": "r-1", "ts": datetime(2026, 12, 6, tzinfo=UTC), "user_id": "u", "context": "{}",
            "items": ["i-1", "i-2", "i-3"], "scores": [0.5, -1.0, 2.0], "propensities": None,
            "variant": "champion", "model_version": "1", "fallback_level": "champion"}  # fmt: skip
    return {**base, **changes}


class Item(str):
    """A str subclass: not the server's own exact str, so the value-by-value check runs."""


def value_by_value(rec: dict[str, Any]) -> str | None:
    """The first problem the value-by-value checks find (the previous code), or None."""

    def numbers(values: Any) -> bool:
        return (
            isinstance(values, list)
            and len(values) == len(rec["items"])
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        )

    items = rec["items"]
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        return "the shown items"
    if not numbers(rec["scores"]):
        return "scores must be"
    shown = [1.0] * len(items) if rec["propensities"] is None else rec["propensities"]
    if not numbers(shown) or not all(0 < p <= 1 for p in shown):
        return "propensities must be"
    if (rec.get("policy") or "deterministic") == "deterministic" and any(p != 1.0 for p in shown):
        return "a deterministic answer"
    return None


CASES = [
    record(),
    record(scores=[1, 2, 3]),
    record(scores=[0.5, True, 2.0]),
    record(scores=[0.5, float("nan"), 2.0]),
    record(scores=[0.5, float("inf"), 2.0]),
    record(scores=[0.5, 1.0]),
    record(scores="0.5"),
    record(scores=[np.float64(0.5), 1.0, 2.0]),
    record(items=["i-1", "", "i-3"]),
    record(items=["i-1", 2, "i-3"]),
    record(items=[Item("i-1"), Item("i-2"), Item("i-3")]),
    record(items=[Item("i-1"), Item(""), Item("i-3")]),
    record(items=[]),
    record(propensities=[1.0, 1, 1.0]),
    record(propensities=[1.0, 0.5, 1.0]),
    record(propensities=[1.0, 0.5, 1.0], policy="explore"),
    record(propensities=[1.0, 0.0, 1.0], policy="explore"),
    record(propensities=[1.0, 1.5, 1.0], policy="explore"),
    record(propensities=[1.0, float("nan"), 1.0], policy="explore"),
    record(propensities=[1.0, False, 1.0], policy="explore"),
]


@pytest.mark.parametrize("rec", CASES)
def test_validate_decides_as_the_value_by_value_checks(rec: dict[str, Any]) -> None:
    problem = value_by_value(rec)
    if problem is not None:
        with pytest.raises(FeedbackError, match=problem):
            validate(rec)
        return
    out = validate(rec)
    shown = [1.0] * len(rec["items"]) if rec["propensities"] is None else rec["propensities"]
    assert out["scores"] == [float(s) for s in rec["scores"]] and out["propensities"] == [float(p) for p in shown]
    assert all(type(v) is float for v in out["scores"] + out["propensities"])
    assert out["scores"] is not rec["scores"], "a copy: the record never aliases the answer's list"
