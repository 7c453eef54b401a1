"""The synthetic truth is regenerated from the lake's spec and lines up with its logged events."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rankops.errors import DataError
from rankops.training import debias
from tests.conftest import REPO, MarketHome
from tests.integration.test_training_jobs import environ_for


def test_regenerated_truth_matches_the_lakes_events(market: MarketHome) -> None:
    truth = debias.true_relevance(market.lake)
    assert truth is not None
    events = market.lake.read("raw", "events", columns=["request_id", "item_id", "clicked"]).to_pandas()
    merged = events.merge(truth, on=["request_id", "item_id"], how="left", validate="one_to_one")
    assert merged["true_relevance"].notna().all() and len(truth) == len(events)
    by_click = merged.groupby("clicked")["true_relevance"].mean()
    assert by_click[True] > by_click[False] + 0.1  # clicks follow the hidden relevance
    unknown = pd.DataFrame({"request_id": ["r-nope"], "item_id": ["i-0"]})
    with pytest.raises(DataError, match="1 holdout rows have no ground truth"):
        debias.attach_truth(unknown, truth)


def test_rankops_train_prints_both_rankers_ndcg_on_truth(  # type: ignore[no-untyped-def]
    market: MarketHome, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rankops.cli import main

    for key, value in environ_for(tmp_path / "home", market).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RANKOPS_TRAINING__POSITION_DEBIAS", "true")
    monkeypatch.setenv("RANKOPS_TRAINING__NUM_BOOST_ROUND", "20")
    assert main(["--config", str(REPO / "rankops.toml"), "train", "--alias", ""]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])["position_debias"]
    for measure in ("ndcg@10_clicks", "ndcg@10_truth"):
        assert set(summary[measure]) == {"biased", "debiased"}
        assert all(0.0 < v <= 1.0 for v in summary[measure].values())
    assert summary["debiased_wins_on_truth"] == (
        summary["ndcg@10_truth"]["debiased"] > summary["ndcg@10_truth"]["biased"]
    )
    assert any("position debiasing, holdout NDCG@10 on true relevance" in line for line in lines)
