"""The canary judged on what users do: the canary cohort's click-through and contact rates against
the control's, on the same traffic window, with a fixed-horizon two-proportion test.

Unit of analysis: the **answer**. CTR here is the share of answers with at least one click in the
top ``k`` positions, contact rate the share with at least one contact (as in
:mod:`rankops.monitoring.online_metrics`). Answers, not impressions: the test needs independent
yes/no trials, and the positions of one answer are not independent of each other. (Answers of one
user are not fully independent either; the sticky canary randomizes users, so with many answers
per user the interval is somewhat too narrow. Documented in docs/release.md.)

The test, per metric, with ``d = rate(canary) - rate(control)``, its unpooled (Wald) standard
error and the two-sided ``1 - alpha`` interval ``[lo, hi]``:

* **horizon**: the canary arm needs ``n* = (z(1-alpha/2) + z(power))^2 * p(1-p) * (1 + 1/r) / mde^2``
  answers (``p`` the control's rate, ``r`` = control answers / canary answers, ``mde`` the
  configured minimum detectable effect, absolute). With ``n*`` answers the test detects a loss of
  ``mde`` with the configured power, and shows a challenger that is as good "not worse by ``mde``"
  with the same power. Before the horizon nothing is decided (no peeking): **hold**.
* at or past the horizon: ``hi < 0`` (a significant loss) -> **rollback**; ``lo > -mde`` (any loss
  is smaller than the minimum effect that matters) -> **advance**; otherwise the difference is
  inside the noise -> **hold**.

Every verdict carries its evidence (counts, rates, difference, interval, z, p-value, ``n*``, the
test's name), which :mod:`rankops.release.local` puts in the step's record. The standard library's
:class:`statistics.NormalDist` gives the quantiles and the p-value, and :func:`count_cohorts` counts
in plain Python: the AWS release Lambda (standard library, boto3 and the AWS SDK for pandas layer)
runs this judge too (:mod:`rankops.release.capture_outcomes`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from rankops.release.decisions import Action, Decision

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from rankops.config import Settings
    from rankops.release.state import ReleaseState

TEST = "two-proportion z-test, unpooled Wald interval, fixed horizon from the minimum detectable effect"
CONTROL, CANARY = "champion", "challenger"
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Verdict:
    """One metric's judgement and the evidence it rests on."""

    metric: str
    action: Action
    reason: str
    evidence: dict[str, Any]


def required_answers(p_control: float, mde: float, alpha: float, power: float, ratio: float = 1.0) -> int:
    """Answers the canary arm needs (``ratio`` = control answers per canary answer) to detect an
    absolute difference of ``mde`` from a rate of ``p_control`` with a two-sided ``alpha`` test at
    ``power`` (the normal approximation, the variance taken at the control's rate)."""
    if not 0 < mde < 1 or not 0 < alpha < 1 or not 0 < power < 1 or ratio <= 0:
        raise ValueError(f"need 0 < mde, alpha, power < 1 and ratio > 0 (got {mde}, {alpha}, {power}, {ratio})")
    variance = max(p_control * (1 - p_control), 1e-12)
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
    return math.ceil(z * z * variance * (1 + 1 / ratio) / (mde * mde))


def judge(
    metric: str, control: tuple[int, int], canary: tuple[int, int], *, mde: float, alpha: float, power: float
) -> Verdict:
    """``control`` and ``canary`` are ``(answers, successes)``; see the module docstring."""
    (n0, x0), (n1, x1) = control, canary
    if min(x0, x1) < 0 or x0 > n0 or x1 > n1:
        raise ValueError(f"{metric}: successes must lie between 0 and the answers (got {control}, {canary})")
    evidence: dict[str, Any] = {
        "test": TEST,
        "mde": mde,
        "alpha": alpha,
        "power": power,
        "control": {"answers": n0, "successes": x0},
        "canary": {"answers": n1, "successes": x1},
    }
    if n0 == 0 or n1 == 0:
        who = "control" if n0 == 0 else "canary"
        return Verdict(metric, "hold", f"{metric}: no {who} answers in the window yet", evidence)
    if x0 + x1 == 0:  # no rate to compare yet (and a zero variance would make any horizon "reached")
        return Verdict(metric, "hold", f"{metric}: no successes in either cohort yet ({n0} + {n1} answers)", evidence)
    p0, p1 = x0 / n0, x1 / n1
    diff = p1 - p0
    se = math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    n_required = required_answers(p0, mde, alpha, power, ratio=n0 / n1)
    half = _NORMAL.inv_cdf(1 - alpha / 2) * se
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    p_value = 2 * (1 - _NORMAL.cdf(abs(z)))
    evidence["control"]["rate"], evidence["canary"]["rate"] = p0, p1
    evidence.update(difference=diff, interval=[diff - half, diff + half], z=z, p_value=p_value, n_required=n_required)
    figures = (
        f"{metric} canary {p1:.4f} ({x1}/{n1}) vs control {p0:.4f} ({x0}/{n0}), "
        f"difference {diff:+.4f}, {1 - alpha:.0%} interval [{diff - half:+.4f}, {diff + half:+.4f}]"
    )
    if n1 < n_required:
        return Verdict(metric, "hold", f"{figures}; {n1} of the {n_required} canary answers needed to judge", evidence)
    if diff + half < 0:
        return Verdict(metric, "rollback", f"{figures}: a significant loss (p = {p_value:.3g})", evidence)
    if diff - half > -mde:
        return Verdict(metric, "advance", f"{figures}: any loss is smaller than {mde}", evidence)
    return Verdict(metric, "hold", f"{figures}: inside the noise (a loss of {mde} is not ruled out)", evidence)


def combine(verdicts: list[Verdict]) -> Decision:
    """Any metric's rollback rolls back; all must advance to advance; otherwise hold."""
    actions = {v.action for v in verdicts}
    action: Action = "rollback" if "rollback" in actions else "advance" if actions == {"advance"} else "hold"
    return Decision(action, [v.reason for v in verdicts], {v.metric: v.evidence for v in verdicts})


def count_cohorts(
    shown: Iterable[tuple[str, str, int]], outcomes: Iterable[tuple[str, int, str]], k: int
) -> dict[str, dict[str, int]]:
    """Per cohort: answers, answers with a click in the top ``k`` positions, answers with a contact.
    ``shown`` holds ``(variant, request_id, items shown)`` per answer, ``outcomes`` ``(request_id,
    position from 1, outcome)``; an outcome joins its answer by request id and a shown position."""
    answers: dict[tuple[str, str], int] = {}
    for variant, request_id, items in shown:
        answers[(variant, request_id)] = max(items, answers.get((variant, request_id), 0))
    clicked: set[tuple[str, int]] = set()
    contacted: set[tuple[str, int]] = set()
    for request_id, position, outcome in outcomes:
        if outcome == "click" and position <= k:
            clicked.add((request_id, position))
        elif outcome == "contact":
            contacted.add((request_id, position))
    counts: dict[str, dict[str, int]] = {}
    for (variant, request_id), items in answers.items():
        row = counts.setdefault(variant, {"answers": 0, "clicked": 0, "contacted": 0})
        row["answers"] += 1
        row["clicked"] += any((request_id, p) in clicked for p in range(1, min(items, k) + 1))
        row["contacted"] += any((request_id, p) in contacted for p in range(1, items + 1))
    return counts


def cohort_counts(feedback: pa.Table, outcomes: pd.DataFrame, k: int) -> dict[str, dict[str, int]]:
    """:func:`count_cohorts` of the feedback log's answers and outcome events (a table and a frame)."""
    shown = zip(
        feedback["variant"].to_pylist(),
        feedback["request_id"].to_pylist(),
        [len(items or []) for items in feedback["items"].to_pylist()],
        strict=True,
    )
    events = zip(outcomes["request_id"], outcomes["position"].astype(int), outcomes["outcome"], strict=True)
    return count_cohorts(((str(v), str(r), n) for v, r, n in shown), events, k)


def judge_cohorts(
    counts: dict[str, dict[str, int]], *, ctr_mde: float, contact_mde: float | None, alpha: float, power: float
) -> Decision:
    """The canary cohort against the control on CTR and (when ``contact_mde`` is above 0) contact rate."""
    none = {"answers": 0, "clicked": 0, "contacted": 0}
    control, canary = counts.get(CONTROL, none), counts.get(CANARY, none)
    metrics = [("ctr", "clicked", ctr_mde)] + ([("contact_rate", "contacted", contact_mde)] if contact_mde else [])
    return combine(
        [
            judge(
                name,
                (control["answers"], control[col]),
                (canary["answers"], canary[col]),
                mde=mde,
                alpha=alpha,
                power=power,
            )
            for name, col, mde in metrics
        ]
    )


def outcome_decision(settings: Settings, state: ReleaseState, now: datetime | None = None) -> Decision | None:
    """The current canary step judged on the feedback log and outcomes since it began (``None`` when
    ``release.canary_outcomes`` is ``off``). Answers whose outcomes have not arrived yet count as
    no click in both cohorts alike (the same window)."""
    from rankops.feedback import store
    from rankops.lake import Lake

    cfg = settings.release
    if cfg.canary_outcomes == "off":
        return None
    lake = Lake.from_settings(settings)
    since = _to_ms(datetime.fromtimestamp(state.updated, UTC))  # the log keeps milliseconds
    now = _to_ms(now or datetime.now(UTC))
    outcomes = store.read_outcomes(lake, since).to_pandas()  # first: without any, the answers are not read
    window = {"since": since.isoformat(), "until": now.isoformat(), "k": cfg.canary_ctr_k}
    if outcomes.empty:
        if cfg.canary_outcomes == "required":
            why = "no evidence yet: no outcome events since the step began (release.canary_outcomes = required)"
            return Decision("hold", [why], {"window": window, "outcome_events": 0})
        why = "outcomes not judged: no outcome events since the step began (release.canary_outcomes = when_logged)"
        return Decision("advance", [why], {"window": window, "outcome_events": 0})
    counts = cohort_counts(store.read(lake, since, now), outcomes, cfg.canary_ctr_k)
    decision = judge_cohorts(
        counts,
        ctr_mde=cfg.canary_ctr_mde,
        contact_mde=cfg.canary_contact_mde,
        alpha=cfg.canary_alpha,
        power=cfg.canary_power,
    )
    evidence = {"window": window, "outcome_events": len(outcomes), "cohorts": counts, **decision.evidence}
    return Decision(decision.action, decision.reasons, evidence)


def _to_ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def with_outcomes(serving: Decision, outcomes: Decision | None) -> Decision:
    """The serving checks and the outcome judgement together: the stricter action, both records."""
    if outcomes is None:
        return serving
    order = {"rollback": 0, "hold": 1, "advance": 2}
    action = min(serving.action, outcomes.action, key=order.__getitem__)
    evidence = {"outcomes": outcomes.evidence}
    if serving.evidence:
        evidence["serving"] = serving.evidence
    return Decision(action, [*serving.reasons, *outcomes.reasons], evidence)
