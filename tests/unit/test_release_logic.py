"""Pure release logic: sticky bucketing, state transitions and the state document,
shadow statistics, and the go/no-go decisions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from rankops.errors import ReleaseError
from rankops.release import bucketing, decisions, evidence, state, stats


# -- bucketing --------------------------------------------------------------------------------
def test_buckets_are_stable_uniform_and_salted() -> None:
    assert bucketing.bucket("u-17", "rankops:3") == bucketing.bucket("u-17", "rankops:3")
    values = np.array([bucketing.bucket(f"u-{k}", "rankops:3") for k in range(20_000)])
    assert values.min() >= 0 and values.max() < 1
    counts = np.histogram(values, bins=10, range=(0, 1))[0]
    assert scipy_stats.chisquare(counts).pvalue > 0.001
    other = np.array([bucketing.bucket(f"u-{k}", "rankops:4") for k in range(20_000)])
    assert abs(np.corrcoef(values, other)[0, 1]) < 0.05, "a new challenger gets a fresh slice of users"


def test_ramping_the_canary_only_adds_users() -> None:
    salt = bucketing.release_salt("rankops", "7")
    users = [f"u-{k}" for k in range(5000)]
    at = {s: {u for u in users if bucketing.in_canary(u, s, salt)} for s in (0.0, 0.1, 0.5, 1.0)}
    assert at[0.0] == set() and at[1.0] == set(users)
    assert at[0.1] <= at[0.5] and 0.08 < len(at[0.1]) / 5000 < 0.12 and 0.47 < len(at[0.5]) / 5000 < 0.53
    assert bucketing.target_variant(next(iter(at[0.1])), 0.1, salt) == "challenger"
    assert bucketing.target_variant(next(iter(set(users) - at[0.5])), 0.5, salt) == "champion"


# -- state --------------------------------------------------------------------------------------
def test_transitions_shadow_canary_promote_rollback() -> None:
    s0 = state.ReleaseState(champion="1")
    s1 = state.start_shadow(s0, "2", 10.0)
    assert (s1.mode, s1.challenger) == ("shadow", "2")
    assert state.next_canary_share(s1, [0.1, 0.5, 1.0]) == 0.1
    s2 = state.set_canary(s1, 0.1, 11.0)
    assert state.next_canary_share(s2, [0.1, 0.5, 1.0]) == 0.5
    s3 = state.set_canary(s2, 1.0, 12.0)
    with pytest.raises(ReleaseError, match="already serves 100%"):
        state.next_canary_share(s3, [0.1, 0.5, 1.0])
    with pytest.raises(ReleaseError, match="a canary of version 2 is running"):
        state.start_shadow(s3, "3", 13.0)
    s4 = state.promote(s3, 14.0)
    assert (s4.champion, s4.previous, s4.challenger, s4.mode, s4.canary_share) == ("2", "1", None, "off", 0.0)
    s5, removed = state.rollback(s4, 15.0)
    assert (s5.champion, s5.previous, removed) == ("1", None, "2")
    s6, removed = state.rollback(state.start_shadow(s5, "3", 16.0), 17.0)
    assert (s6.champion, s6.challenger, s6.mode, removed) == ("1", None, "off", "3")
    assert [e["action"] for e in s6.history] == [
        "shadow",
        "canary",
        "canary",
        "promote",
        "rollback",
        "shadow",
        "rollback",
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: state.start_shadow(state.ReleaseState(), "2", 0), "no champion"),
        (lambda: state.start_shadow(state.ReleaseState(champion="2"), "2", 0), "already the champion"),
        (lambda: state.set_canary(state.ReleaseState(champion="1"), 0.1, 0), "no challenger"),
        (lambda: state.promote(state.ReleaseState(champion="1"), 0), "no challenger to promote"),
        (lambda: state.rollback(state.ReleaseState(champion="1"), 0), "nothing to roll back"),
    ],
)
def test_transitions_refuse_with_a_reason(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ReleaseError, match=message):
        call()


def test_state_document_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "release" / "state.json"
    assert state.read_state(path) is None
    written = state.set_canary(state.start_shadow(state.ReleaseState(champion="1"), "2", 1.0), 0.5, 2.0)
    state.write_state(path, written)
    assert state.read_state(path) == written
    assert [p.name for p in path.parent.iterdir()] == ["state.json"], "no temporary file left behind"
    for doc, message in [
        ("[]", "must be a JSON object"),
        ('{"mode": "blue"}', "mode must be one of"),
        ('{"mode": "canary", "canary_share": 2}', r"canary_share must be a number in \[0, 1\]"),
        ('{"mode": "shadow"}', "needs a challenger"),
        ('{"champion": 3}', "champion must be a version string"),
        ('{"colour": "red"}', "unknown field"),
        ('{"baseline": [1]}', "baseline must be an object"),
        ("{", "not valid JSON"),
    ]:
        path.write_text(doc)
        with pytest.raises(ReleaseError, match=message):
            state.read_state(path)


# -- statistics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_numpy_rank_correlations_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 8, 40).astype(float)  # ties on purpose
    b = a + rng.normal(0, 2, 40).round()
    assert stats.spearman_numpy(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic)
    assert stats.kendall_numpy(a, b) == pytest.approx(scipy_stats.kendalltau(a, b).statistic)
    assert stats.rank_correlations(a, b) == pytest.approx(
        (scipy_stats.spearmanr(a, b).statistic, scipy_stats.kendalltau(a, b).statistic)
    )


def test_correlations_are_undefined_for_constant_scores() -> None:
    assert all(np.isnan(stats.rank_correlations(np.ones(5), np.arange(5.0))))


def test_kl_divergence_separates_same_from_shifted() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 4000), rng.normal(0, 1, 4000)
    assert stats.kl_divergence(a, b) < 0.02
    assert stats.kl_divergence(a, rng.normal(2, 1, 4000)) > 0.5
    assert np.isfinite(stats.kl_divergence(a, a + 100)), "smoothing keeps disjoint samples finite"
    assert stats.kl_divergence(np.ones(10), np.ones(10)) == 0.0


def test_accumulator_snapshots_merge_and_summarize() -> None:
    rng = np.random.default_rng(1)
    first, second = stats.ShadowAccumulator(), stats.ShadowAccumulator()
    for acc in (first, second):
        for _ in range(10):
            champion = rng.normal(size=20)
            acc.add(champion, champion * 2 + 1)  # same order, another scale
    merged = stats.merge([json.loads(json.dumps(first.snapshot())), second.snapshot()])
    summary = stats.summarize(merged)
    assert summary["requests"] == 20 and summary["spearman_mean"] == pytest.approx(1.0)
    assert summary["top1_agreement"] == 1.0 and summary["raw_kl_divergence"] > 0.1, "the scale moved"
    assert summary["kl_divergence"] == pytest.approx(0.0, abs=1e-9), "within requests, nothing moved"
    assert stats.summarize(stats.merge([]))["spearman_mean"] is None


# -- decisions ----------------------------------------------------------------------------------
def test_histogram_quantile_is_close_to_the_sample_quantile() -> None:
    rng = np.random.default_rng(2)
    sample = rng.exponential(0.004, 20_000)
    bounds = [0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, float("inf")]
    buckets = [(b, float((sample <= b).sum())) for b in bounds]
    assert decisions.histogram_quantile(0.95, buckets) == pytest.approx(np.quantile(sample, 0.95), rel=0.08)
    assert decisions.histogram_quantile(0.95, []) is None
    assert decisions.histogram_quantile(0.5, [(0.01, 0.0), (float("inf"), 4.0)]) == 0.01


def test_shadow_decision() -> None:
    good = {"requests": 500, "spearman_mean": 0.9, "kl_divergence": 0.05}
    assert decisions.shadow_decision(good, 100, 0.3, 0.5).action == "advance"
    assert decisions.shadow_decision({**good, "requests": 5}, 100, 0.3, 0.5).action == "hold"
    bad = decisions.shadow_decision({**good, "spearman_mean": -0.4, "kl_divergence": 2.0}, 100, 0.3, 0.5)
    assert bad.action == "rollback" and len(bad.reasons) == 2


def test_canary_decision() -> None:
    champion = decisions.VariantStats(1000, 1, 0.004)
    limits = {"min_requests": 100, "max_fallback_rate": 0.01, "max_latency_ratio": 1.5, "latency_budget_s": 0.15}
    healthy = decisions.VariantStats(200, 1, 0.005)
    assert decisions.canary_decision(champion, healthy, **limits).ok
    assert decisions.canary_decision(champion, decisions.VariantStats(50, 0, 0.004), **limits).action == "hold"
    degraded = decisions.canary_decision(champion, decisions.VariantStats(200, 10, 0.004), **limits)
    assert degraded.action == "rollback" and "fell back" in degraded.reasons[0]
    slow = decisions.canary_decision(champion, decisions.VariantStats(200, 0, 0.2), **limits)
    assert slow.action == "rollback" and len(slow.reasons) == 2
    # 2x the champion's 4 ms p95 is a regression by ratio, but 4 ms is within bucket resolution and noise
    noisy = decisions.VariantStats(200, 0, 0.008)
    assert decisions.canary_decision(champion, noisy, **limits, min_latency_increase_s=0.010).ok
    assert not decisions.canary_decision(champion, noisy, **limits, min_latency_increase_s=0.002).ok
    really_slower = decisions.VariantStats(200, 0, 0.020)
    assert not decisions.canary_decision(champion, really_slower, **limits, min_latency_increase_s=0.010).ok


def test_a_transition_drops_the_previous_steps_baseline() -> None:
    shadowed = state.start_shadow(state.ReleaseState(champion="1"), "2", 1.0)
    with_baseline = state.ReleaseState(**{**shadowed.__dict__, "baseline": {"taken_at": 1.0}})
    assert state.set_canary(with_baseline, 0.1, 2.0).baseline is None


def test_counters_since_a_snapshot_give_one_steps_figures() -> None:
    from rankops.monitoring.metrics import ServingMetrics

    metrics = ServingMetrics()

    def serve(variant: str, outcome: str, seconds: float, times: int) -> None:
        for _ in range(times):
            metrics.request_seconds.labels(variant, outcome).observe(seconds)

    serve("challenger", "ok", 0.2, 113)  # an earlier challenger: slow
    serve("challenger", "degraded", 0.2, 7)
    serve("champion", "ok", 0.003, 500)
    serve("none", "rejected", 0.001, 3)
    base = evidence.request_counters(metrics.exposition()[0].decode())
    assert base["challenger"]["ok"] == 113 and base["challenger"]["degraded"] == 7 and "none" not in base
    assert evidence.stats_from_counters(base)["challenger"].requests == 120, "cumulative: what the old check used"

    assert evidence.stats_from_counters(evidence.counters_since(base, base))["challenger"].requests == 0
    serve("challenger", "ok", 0.004, 40)
    serve("challenger", "degraded", 0.004, 1)
    since = evidence.stats_from_counters(
        evidence.counters_since(evidence.request_counters(metrics.exposition()[0].decode()), base)
    )
    challenger = since["challenger"]
    assert (challenger.requests, challenger.degraded) == (41, 1)
    assert challenger.p95_s is not None and challenger.p95_s <= 0.005, "the earlier 200 ms requests are not counted"
    assert since["champion"].requests == 0
    assert evidence.counters_since({"champion": base["champion"]}, {"champion": {"ok": 1e9}})["champion"]["ok"] == 0
