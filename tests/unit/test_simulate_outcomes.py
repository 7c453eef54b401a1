"""Outcome events drawn from the synthetic marketplace's truth: the re-drawn truth is the
generator's, clicks follow position bias and relevance, and the CTR judge reads what is written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from rankops.errors import DataError
from rankops.feedback import store
from rankops.feedback.record import to_table
from rankops.release import ctr_judge
from rankops.simulate import outcomes
from rankops.simulate.truth import spec_of, truth
from rankops.synthetic import CATEGORIES, DEVICES, MarketplaceSpec, generate, write_marketplace

SPEC = MarketplaceSpec(events=4_000, days=2, seed=3, start=date(2026, 11, 1))
AT = datetime(2026, 11, 3, 10, tzinfo=UTC)


def test_the_redrawn_truth_is_the_generators() -> None:
    market, t = generate(SPEC), truth(SPEC)
    assert np.array_equal(t.quality, market.item_quality)
    assert np.array_equal(t.image_quality, market.items["image_quality"].to_numpy())
    ev = market.events.to_pandas()
    item = ev["item_id"].str[2:].astype(int).to_numpy()
    user = ev["user_id"].str[2:].astype(int).to_numpy()
    query = ev["query_category"].map(CATEGORIES.index).to_numpy()
    ts = market.events["ts"].cast(pa.int64()).to_numpy()  # epoch milliseconds
    residual = market.utility - t.utility(item, user, query, ts, np.zeros(len(item)))
    assert 0.45 < residual.std() < 0.55 and abs(residual.mean()) < 0.05  # only the generator's N(0, 0.5) noise


def answers(n: int, order: str, seed: int, variant: str = "champion") -> list[dict]:
    """``n`` answers of 10 items each; ``order``: ``best`` / ``worst`` first by true quality, or ``random``."""
    rng, t = np.random.default_rng(seed), truth(SPEC)
    rows = []
    for r in range(n):
        items = rng.choice(SPEC.n_items, 10, replace=False)
        if order != "random":
            items = items[np.argsort(-t.quality[items] if order == "best" else t.quality[items])]
        rows.append(
            {
                "request_id": f"{variant}-{seed}-{r}",
                "ts": AT + timedelta(seconds=r),
                "user_id": f"u-{rng.integers(SPEC.n_users)}",
                "context": json.dumps({"category": CATEGORIES[r % len(CATEGORIES)], "device": DEVICES[0]}),
                "items": [f"i-{i}" for i in items],
                "scores": [0.0] * 10,
                "propensities": [1.0] * 10,
                "variant": variant,
                "model_version": "1",
                "fallback_level": variant,
                "policy": "deterministic",
                "features": None,
            }
        )
    return rows


def test_clicks_follow_position_bias() -> None:
    events = outcomes.draw(truth(SPEC), to_table(answers(3_000, "random", seed=1)), seed=2)
    clicks = events[events["outcome"] == "click"]["position"].value_counts()
    assert clicks[1] > 1.3 * clicks[10]  # same items on average at every position: only the bias differs
    assert set(events["outcome"]) <= set(store.OUTCOMES) and (events["ts"] > AT).all()
    contacts = events[events["outcome"] == "contact"]
    assert set(zip(contacts["request_id"], contacts["position"], strict=True)) <= set(
        zip(events["request_id"], events["position"], strict=True)
    )


def test_the_ctr_judge_reads_what_the_simulator_writes(lake) -> None:  # type: ignore[no-untyped-def]
    write_marketplace(lake, generate(SPEC))
    store.write(lake, answers(600, "best", seed=4) + answers(600, "worst", seed=5, variant="challenger"))
    written, parts = outcomes.write(lake, truth(spec_of(lake)), store.read(lake), seed=6)
    assert parts and len(store.read_outcomes(lake)) == len(written)
    counts = ctr_judge.cohort_counts(store.read(lake), store.read_outcomes(lake).to_pandas(), k=10)
    assert counts["champion"]["answers"] == counts["challenger"]["answers"] == 600
    clicked = written[written["outcome"] == "click"]
    for variant in ("champion", "challenger"):
        mine = clicked[clicked["request_id"].str.startswith(variant)]
        assert counts[variant]["clicked"] == mine["request_id"].nunique()
    assert counts["champion"]["clicked"] > counts["challenger"]["clicked"]  # the truth ranks the best first


def test_an_id_outside_the_marketplace_is_named() -> None:
    rows = answers(2, "random", seed=7)
    rows[1]["user_id"] = "visitor-9"
    with pytest.raises(DataError, match="user 'visitor-9' is not one of the synthetic marketplace's"):
        outcomes.draw(truth(SPEC), to_table(rows), seed=0)
