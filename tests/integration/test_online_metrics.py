"""The online metrics job (Spark) on a hand-checkable feedback log and its outcomes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from rankops.cli import main
from rankops.feedback import store
from rankops.feedback.record import validate
from rankops.lake import Lake
from rankops.monitoring.metrics import job_metrics_dir
from rankops.monitoring.online_metrics import revenue_datum

HOUR = datetime(2026, 12, 1, 9, tzinfo=UTC)


def answer(rid: str, items: list[str], variant: str, version: str, level: str) -> dict:
    return {"request_id": rid, "ts": HOUR.replace(minute=10), "user_id": "u", "context": "{}", "items": items,
            "scores": [0.0] * len(items), "propensities": None, "variant": variant, "model_version": version,
            "fallback_level": level}  # fmt: skip


def test_online_metrics_per_cohort_from_the_lake(spark, settings, capsys) -> None:  # type: ignore[no-untyped-def]
    lake = Lake.from_settings(settings)
    lake.write_partition("raw", "items", {"dt": "2026-12-01"}, pa.table({"item_id": list("abcdea")}))
    store.write(
        lake,
        [
            validate(answer("a1", ["a", "b", "c"], "champion", "1", "champion")),
            validate(answer("a2", ["b", "c", "d"], "champion", "1", "champion")),
            validate(answer("a3", ["a", "d", "e"], "challenger", "2", "rule")),
        ],
    )
    store.write_outcomes(
        lake,
        pd.DataFrame(
            {
                "request_id": ["a1", "a1", "a2"],
                "position": [1, 3, 2],
                "outcome": ["click", "purchase", "contact"],
                "value": [0.0, 50.0, 0.0],
                "ts": [HOUR.replace(minute=20)] * 3,
            }
        ),
    )
    window = ["--since", HOUR.isoformat(), "--until", (HOUR + timedelta(hours=1)).isoformat()]
    assert main(["--home", str(settings.home), "online-metrics", "--k", "2", *window]) == 0, capsys.readouterr().err
    report = json.loads((settings.home / "reports" / "online" / "online_metrics.json").read_text())
    rows = {r["variant"]: r for r in report}
    champion, challenger = rows["champion"], rows["challenger"]
    assert (champion["answers"], champion["answers_champion"], champion["model_version"]) == (2, 2, "1")
    assert champion["ctr_at_k"] == 1 / 4, "one click on four top-2 impressions"
    assert champion["contact_rate"] == 0.5 and champion["revenue_proxy"] == 50.0
    ndcg_a1 = 1 / (3 + 1 / math.log2(3))  # clicked first, the purchase shown third
    ndcg_a2 = (2 / math.log2(3)) / 2
    assert champion["ndcg_at_k"] == pytest.approx((ndcg_a1 + ndcg_a2) / 2)
    assert (challenger["answers_rule"], challenger["ctr_at_k"], challenger["ndcg_at_k"]) == (1, 0, None)
    assert challenger["coverage"] == 2 / 5 and champion["coverage"] == 3 / 5, "5 items in the catalogue"

    text = (job_metrics_dir(settings.home) / "online.prom").read_text()
    assert 'rankops_online_ctr{k="2",model_version="1",variant="champion"} 0.25' in text
    assert 'rankops_revenue_proxy{model_version="1",variant="champion"} 50.0' in text
    assert revenue_datum(
        [{**r, "hour": datetime.fromisoformat(r["hour"])} for r in report], "dev"
    )["Value"] == 50.0  # fmt: skip
