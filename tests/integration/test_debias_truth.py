"""The synthetic truth is regenerated from the lake's spec and lines up with its logged events."""

from __future__ import annotations

import pandas as pd
import pytest

from rankops.errors import DataError
from rankops.training import debias
from tests.conftest import MarketHome


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
