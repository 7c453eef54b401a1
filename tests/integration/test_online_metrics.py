"""The online metrics job (Spark) on a hand-checkable feedback log and its outcomes."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from rankops.feedback.record import to_table
from rankops.monitoring.online_metrics import online_metrics, prometheus_text, revenue_datum

HOUR = datetime(2026, 12, 1, 9, tzinfo=UTC)


def answer(rid: str, items: list[str], variant: str, version: str, level: str) -> dict:
    return {"request_id": rid, "ts": HOUR.replace(minute=10), "user_id": "u", "context": "{}", "items": items,
            "scores": [0.0] * len(items), "propensities": None, "variant": variant, "model_version": version,
            "fallback_level": level}  # fmt: skip


def test_online_metrics_per_cohort(spark) -> None:  # type: ignore[no-untyped-def]
    feedback = to_table(
        [
            answer("a1", ["a", "b", "c"], "champion", "1", "champion"),
            answer("a2", ["b", "c", "d"], "champion", "1", "champion"),
            answer("a3", ["a", "d", "e"], "challenger", "2", "rule"),
        ]
    )
    outcomes = pd.DataFrame(
        {
            "request_id": ["a1", "a1", "a2"],
            "position": [1, 3, 2],
            "outcome": ["click", "purchase", "contact"],
            "value": [0.0, 50.0, 0.0],
        }
    )
    frame = online_metrics(spark.createDataFrame(feedback.to_pandas()), spark.createDataFrame(outcomes), 10, k=2)
    rows = {r["variant"]: r.asDict() for r in frame.collect()}
    champion, challenger = rows["champion"], rows["challenger"]
    assert (champion["answers"], champion["answers_champion"], champion["model_version"]) == (2, 2, "1")
    assert champion["ctr_at_k"] == 1 / 4, "one click on four top-2 impressions"
    assert champion["contact_rate"] == 0.5 and champion["revenue_proxy"] == 50.0
    ndcg_a1 = 1 / (3 + 1 / math.log2(3))  # clicked first, the purchase shown third
    ndcg_a2 = (2 / math.log2(3)) / 2
    assert champion["ndcg_at_k"] == pytest.approx((ndcg_a1 + ndcg_a2) / 2)
    assert champion["coverage"] == 3 / 10
    assert (challenger["answers_rule"], challenger["ctr_at_k"], challenger["ndcg_at_k"]) == (1, 0, None)
    assert challenger["coverage"] == 2 / 10

    collected = [r.asDict() for r in frame.collect()]
    text = prometheus_text(collected).decode()
    assert 'rankops_online_ctr{k="2",model_version="1",variant="champion"} 0.25' in text
    assert 'rankops_revenue_proxy{model_version="1",variant="champion"} 50.0' in text
    assert revenue_datum(collected, "dev")["Value"] == 50.0
