"""Go / no-go decisions between release steps, as pure functions over measured figures.

* :func:`shadow_decision`: may the challenger take real traffic? Its rankings must
  correlate with the champion's and its score distribution must not have moved
  too far (``release.min_rank_correlation``, ``release.max_kl_divergence``).
* :func:`canary_decision`: may the canary grow (10% -> 50% -> 100%) or be
  promoted? The challenger must have served enough requests, degrade no more
  often than allowed, and stay within the latency ratio and the budget.

Each returns a :class:`Decision`: ``advance``, ``hold`` (not enough evidence yet)
or ``rollback``, with the reasons in words. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rankops.release.rate_limit import judge_rate

Action = Literal["advance", "hold", "rollback"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # the figures and test behind it, for the record

    @property
    def ok(self) -> bool:
        return self.action == "advance"

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "reasons": list(self.reasons)}
        return {**doc, "evidence": self.evidence} if self.evidence else doc


@dataclass(frozen=True)
class VariantStats:
    """What the server measured for the requests routed to one variant."""

    requests: int
    degraded: int
    p95_s: float | None

    @property
    def degraded_rate(self) -> float:
        return self.degraded / self.requests if self.requests else 0.0


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus-style quantile from cumulative ``(upper_bound, count)`` buckets (linear within a bucket)."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: its lower edge, as Prometheus does
            width = cumulative - below
            return lower + (upper - lower) * ((rank - below) / width if width else 1.0)
        lower, below = upper, cumulative
    return lower


def shadow_decision(
    summary: dict[str, Any], min_requests: int, min_rank_correlation: float, max_kl_divergence: float
) -> Decision:
    requests = int(summary.get("requests") or 0)
    if requests < min_requests:
        return Decision("hold", [f"only {requests} shadowed requests; need {min_requests}"])
    reasons: list[str] = []
    spearman = summary.get("spearman_mean")
    if spearman is None or spearman < min_rank_correlation:
        reasons.append(f"mean rank correlation {spearman} is below {min_rank_correlation}")
    kl = summary.get("kl_divergence")
    if kl is None or kl > max_kl_divergence:
        reasons.append(f"score KL divergence {kl} exceeds {max_kl_divergence}")
    if reasons:
        return Decision("rollback", reasons)
    return Decision(
        "advance", [f"rank correlation {spearman:.3f} >= {min_rank_correlation}, KL {kl:.3f} <= {max_kl_divergence}"]
    )


def canary_decision(
    champion: VariantStats,
    challenger: VariantStats,
    *,
    min_requests: int,
    max_fallback_rate: float,
    max_latency_ratio: float,
    latency_budget_s: float,
    min_latency_increase_s: float = 0.0,
) -> Decision:
    """Advance, hold (too little evidence) or roll back. A challenger slower than
    ``max_latency_ratio`` × the champion's p95 is a regression only if it is also at least
    ``min_latency_increase_s`` slower: at a few milliseconds, histogram buckets and machine noise
    alone make ratios of 1.5-2 between two equally fast models."""
    if challenger.requests < min_requests:
        return Decision("hold", [f"the challenger served {challenger.requests} requests; need {min_requests}"])
    reasons: list[str] = []
    fell_back = judge_rate(challenger.degraded, challenger.requests, max_fallback_rate)
    if fell_back.exceeded:
        reasons.append(
            "the challenger's requests fell back significantly more often than the limit: "
            + fell_back.describe(challenger.degraded, challenger.requests, max_fallback_rate)
        )
    if challenger.p95_s is not None:
        if challenger.p95_s > latency_budget_s:
            reasons.append(
                f"challenger p95 {challenger.p95_s * 1000:.1f} ms exceeds the budget {latency_budget_s * 1000:.0f} ms"
            )
        if (
            champion.p95_s
            and champion.requests >= min_requests
            and challenger.p95_s > max_latency_ratio * champion.p95_s
            and challenger.p95_s - champion.p95_s >= min_latency_increase_s
        ):
            reasons.append(
                f"challenger p95 {challenger.p95_s * 1000:.1f} ms is over {max_latency_ratio}x the champion's "
                f"{champion.p95_s * 1000:.1f} ms"
            )
    if reasons:
        return Decision("rollback", reasons)
    p95 = "n/a" if challenger.p95_s is None else f"{challenger.p95_s * 1000:.1f} ms"
    return Decision(
        "advance",
        [f"challenger: {challenger.requests} requests, {challenger.degraded_rate:.2%} degraded, p95 {p95}"],
    )
