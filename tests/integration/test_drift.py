"""Drift of served traffic against a training reference, with the offline features of a real
(small) marketplace: the shifted hour is flagged on the shifted columns, the steady hour is not."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from rankops.cli import main
from rankops.features import registry
from rankops.features.offline import read_manifest
from rankops.feedback.record import to_table
from rankops.monitoring import drift_report as dr
from rankops.monitoring.drift import CONTEXT_CATEGORY, reference_histograms


def traffic(items: pd.DataFrame, start: datetime, requests: int, seed: int, only: str | None = None) -> list[dict]:
    """Requests of 10 random items each; ``only``: every request searches one category and sees only its items."""
    rng = np.random.default_rng(seed)
    categories = sorted(items["category"].unique())
    pool = items[items["category"] == only] if only else items
    return [
        {
            "request_id": f"{seed}-{r}",
            "ts": start + timedelta(seconds=int(rng.integers(0, 3600))),
            "user_id": f"u-{r}",
            "context": json.dumps({"category": only or categories[rng.integers(len(categories))]}),
            "items": list(rng.choice(pool["item_id"].to_numpy(), 10, replace=False)),
            "scores": [0.0] * 10,
            "propensities": [1.0] * 10,
            "variant": "champion",
            "model_version": "1",
            "fallback_level": "champion",
        }
        for r in range(requests)
    ]


def test_drift_flags_the_shifted_hour_on_the_shifted_columns(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, settings = market.lake, market.settings
    items = lake.read("raw", "items", columns=["item_id", "category"]).to_pandas().drop_duplicates("item_id")
    end = datetime.fromisoformat(read_manifest(lake, settings)["published_through"])
    # the "training" reference: steady traffic, as the processing step would summarize it
    steady = dr.shown_rows(to_table(traffic(items, end - timedelta(hours=5), 300, seed=1)))
    frame = dr.served_features(lake, settings, steady, end)
    # request times in the log's milliseconds: listings are aged from them (they are not all "new")
    assert (frame["days_since_creation"] > 1).mean() > 0.5, frame["days_since_creation"].describe()
    manifest = {
        "dataset_hash": "test",
        "reference": reference_histograms(frame, registry.model_features(), [CONTEXT_CATEGORY]),
    }

    served = traffic(items, end - timedelta(hours=2), 200, seed=2)
    campaign = str(items["category"].value_counts().index[0])
    served += traffic(items, end - timedelta(hours=1), 200, seed=3, only=campaign)
    report = dr.drift_report(lake, settings, manifest, to_table(served), end - timedelta(hours=2), end)

    steady_hour, shifted_hour = report["hourly"]
    assert max(steady_hour["psi"].values()) < report["threshold"], steady_hour
    assert {CONTEXT_CATEGORY, "category_match"} <= set(report["drifted"]), report["drifted"]
    assert report["max_psi"] == max(shifted_hour["psi"].values()) and len(report["daily"]) >= 1
    assert set(shifted_hour["psi"]) == {*registry.model_features(), CONTEXT_CATEGORY}

    dr.plot(report, tmp_path / "drift.png")
    assert (tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"
    text = dr.prometheus_text(report).decode()
    assert f'rankops_feature_drift_psi{{feature="{CONTEXT_CATEGORY}",window="hour"}}' in text
    assert dr.cloudwatch_datum(report, "dev")["Value"] == report["max_psi"]


def test_drift_on_a_window_without_traffic_says_so_and_exits_2(home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["--home", str(home), "drift", "--since", "2026-12-01T00:00", "--until", "2026-12-01T06:00"])
    assert code == 2
    assert (
        "no served traffic in the feedback log between 2026-12-01 00:00 and 2026-12-01 06:00" in capsys.readouterr().err
    )
