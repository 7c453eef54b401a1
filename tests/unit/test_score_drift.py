"""Score KL against the training-time reference (rankops.monitoring.score_drift): known
distributions give known divergences, fallback answers are left out, no reference says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from rankops.feedback.record import to_table
from rankops.monitoring.score_drift import score_kl, score_reference

START = datetime(2026, 12, 1, 10, tzinfo=UTC)


def answers(scores: np.ndarray, version: str, level: str = "champion", hour: int = 0) -> list[dict]:  # type: ignore[type-arg]
    per = 10
    return [
        {
            "request_id": f"{version}-{level}-{hour}-{k}",
            "ts": START + timedelta(hours=hour, seconds=k),
            "user_id": "u",
            "context": "{}",
            "items": [f"i{j}" for j in range(per)],
            "scores": [float(s) for s in scores[k * per : (k + 1) * per]],
            "propensities": [1.0] * per,
            "variant": "champion",
            "model_version": version,
            "fallback_level": level,
        }
        for k in range(len(scores) // per)
    ]


def test_served_scores_like_training_diverge_little_and_shifted_ones_a_lot() -> None:
    rng = np.random.default_rng(0)
    reference = score_reference(rng.normal(0, 1, 20_000))
    assert reference["rows"] == 20_000 and len(reference["edges"]) == 19
    assert sum(reference["shares"]) == pytest.approx(1.0)
    same = rng.normal(0, 1, 5000)
    shifted = rng.normal(1.0, 1, 5000)
    feedback = to_table(answers(same, "1") + answers(shifted, "2", hour=1) + answers(shifted, "1", "rule", hour=1))
    report = score_kl(feedback, {"1": reference, "2": reference})
    assert report["1"]["scores"] == 5000, "the rule level's scores are not the model's"
    assert report["1"]["kl"] < 0.02
    # KL(N(1,1) || N(0,1)) = 0.5 nats; quantile bins (outer bins open-ended) see most of it
    assert 0.3 < report["2"]["kl"] < 0.6
    assert [h["start"] for h in report["2"]["hourly"]] == [(START + timedelta(hours=1)).isoformat()]
    assert report["2"]["hourly"][0]["kl"] == report["2"]["kl"]


def test_a_version_without_a_reference_is_reported_without_a_number() -> None:
    feedback = to_table(answers(np.zeros(20), "7"))
    report = score_kl(feedback, {"7": None})
    assert report == {
        "7": {
            "scores": 20,
            "reference_rows": None,
            "kl": None,
            "note": "no score reference logged with this model version",
        }
    }
    assert score_kl(to_table(answers(np.zeros(20), "7", "input_order")), {}) == {}
