"""Is a share of bad answers over its limit, or only unlucky? An exact one-sided binomial test.

A release check that compares a raw share with a small limit (1 % degraded answers) on a short
window judges noise: one degraded answer of 18 is 5.6 %, yet a model degrading exactly 1 % of its
answers shows at least one in 18 answers 17 % of the time. The check therefore fails a share only
when it is above the limit *and* that many bad answers would be unlikely (p < ``alpha``) if the
true rate were the limit; at production volumes (thousands of answers per window) this is the raw
comparison within a fraction of a percent.

Standard library only: the release Lambda imports this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05  # the chance of failing a model whose true rate is exactly the limit


def binomial_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, exact (terms in log space, summed from ``k`` up
    until they stop mattering)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        total += term
        if i > n * p and term < 1e-17 * total:  # past the mode the terms only shrink
            break
    return min(total, 1.0)


@dataclass(frozen=True)
class RateJudgement:
    exceeded: bool  # significantly above the limit
    share: float | None  # ``None`` when there were no answers
    p_value: float  # of ``count`` or more bad answers at a true rate equal to the limit

    def describe(self, count: float, n: float, limit: float) -> str:
        share = "n/a" if self.share is None else f"{self.share:.1%}"
        return f"{count:.0f} of {n:.0f} ({share}; limit {limit:.1%}, p = {self.p_value:.3g} at the limit)"


def judge_rate(count: float, n: float, limit: float, alpha: float = ALPHA) -> RateJudgement:
    """Whether ``count`` bad of ``n`` answers is significantly above ``limit`` (see the module docstring)."""
    if count < 0 or n < 0 or count > n:
        raise ValueError(f"need 0 <= count <= n, got {count} of {n}")
    if n == 0:
        return RateJudgement(False, None, 1.0)
    share = count / n
    p_value = binomial_tail(round(count), round(n), limit)
    return RateJudgement(share > limit and p_value < alpha, share, p_value)
