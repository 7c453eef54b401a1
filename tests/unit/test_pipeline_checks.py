from datetime import UTC, datetime

import pytest

from rankops.errors import DataError
from rankops.pipeline.checks import feature_readiness, gate_outcome

NOW = datetime(2026, 11, 10, tzinfo=UTC)


def status(run_status: str = "published", through: str | None = "2026-11-06T00:00:00+00:00") -> dict:
    return {
        "version": "v1",
        "published_through": through,
        "max_lag_hours": 2.0,
        "last_run": {"run_id": "r1", "status": run_status, "failures": [{"message": "null rate 0.2"}]},
    }


def test_fresh_validated_features_are_ready() -> None:
    ready = feature_readiness(status(), "2026-11-06T01:00:00Z", NOW)
    assert ready["ok"] and ready["lag_hours"] == pytest.approx(1.0) and ready["reasons"] == []


def test_stale_or_rejected_features_stop_the_run_with_reasons() -> None:
    stale = feature_readiness(status(), "2026-11-06T05:00:00Z", NOW)
    assert not stale["ok"] and "5.0 h before the snapshot" in stale["reasons"][0]
    rejected = feature_readiness(status("rejected"), "latest", NOW)
    assert not rejected["ok"] and "rejected by validation: null rate 0.2" in rejected["reasons"][0]
    never = feature_readiness(None, "latest", NOW)
    assert not never["ok"] and "rankops features build" in never["reasons"][0]
    assert not feature_readiness(status(through=None), "latest", NOW)["ok"]


def test_latest_snapshot_checks_validation_only() -> None:
    assert feature_readiness(status(), "latest", NOW)["ok"]


def test_gate_outcome_keeps_the_decision_and_the_metrics() -> None:
    doc = {
        "promote": False,
        "decision": "reject",
        "reasons": ["ndcg below floor"],
        "version": 4,
        "champion_version": "3",
        "thresholds": {"ndcg_floor": 0.9},
        "metrics": {
            "challenger": {"overall": {"ndcg@10": 0.5}},
            "champion": {"overall": {"ndcg@10": 0.6}},
            "baselines": {"random": {"overall": {"ndcg@10": 0.3}}},
        },
    }
    outcome = gate_outcome(doc)
    assert outcome["promote"] is False and outcome["version"] == "4" and outcome["champion_version"] == "3"
    assert outcome["already_champion"] is False
    assert outcome["metrics"] == {
        "challenger": {"ndcg@10": 0.5},
        "champion": {"ndcg@10": 0.6},
        "baseline_random": {"ndcg@10": 0.3},
    }
    with pytest.raises(DataError, match=r"no evaluation report at s3://b/e\.json"):
        gate_outcome(None, "s3://b/e.json")


def test_a_rerun_that_trained_the_champion_again_is_recognised() -> None:
    doc = {"promote": True, "decision": "promote", "reasons": [], "version": 3, "champion_version": 3}
    assert gate_outcome(doc)["already_champion"] is True
    first = {**doc, "champion_version": None}
    assert gate_outcome(first)["already_champion"] is False and gate_outcome(first)["champion_version"] is None
