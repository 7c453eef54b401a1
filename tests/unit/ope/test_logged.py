"""The seam for lake logs: a logged-ranking table and a ranker's scores in, estimates out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from rankops.errors import DataError
from rankops.ope import logged


def table(propensity: list[float]) -> pa.Table:
    # two requests of two shown items; the logging policy swapped them at random (p = 0.5 each)
    return pa.table(
        {
            "request_id": ["r1", "r1", "r2", "r2"],
            "position": [1, 2, 1, 2],
            "item_id": ["a", "b", "b", "a"],
            "clicked": [True, False, False, False],
            "propensity": propensity,
        }
    )


def test_a_ranker_that_puts_a_first_is_credited_with_the_click_it_earned() -> None:
    scores = np.array([2.0, 1.0, 1.0, 2.0])  # item a above b, in both requests
    target = logged.deterministic_target(logged.ranking_log(table([0.5] * 4))[0], scores)
    assert list(target) == [1.0, 1.0, 0.0, 0.0]  # agrees with request r1's order only
    report = logged.evaluate_ranker(table([0.5] * 4), scores, n_boot=20)
    ips = next(e for e in report["estimates"] if e["estimator"] == "ips")  # type: ignore[attr-defined]
    assert ips["value"] == pytest.approx(1.0)  # (1/0.5 * 1 click) / 2 requests


def test_zero_propensity_rows_are_quarantined_and_a_missing_column_is_named() -> None:
    report = logged.evaluate_ranker(table([0.5, 0.5, 0.0, 0.5]), np.array([2.0, 1.0, 1.0, 2.0]), n_boot=20)
    assert report["quarantined_zero_propensity"] == 1
    with pytest.raises(DataError, match="missing column 'propensity'"):
        logged.ranking_log(table([0.5] * 4).drop(["propensity"]))
