"""The canary judged on what users do, in AWS: data capture joined to the lake's outcome events.

In a canary both variants are production variants, and SageMaker's data capture holds each
variant's answers (``<destination>/<endpoint>/<variant>/...``, the format
:mod:`rankops.monitoring.data_capture` parses). Outcome events (clicks, contacts, purchases) are in
the lake's raw zone (``raw/outcomes``, committed partitions only, as :mod:`rankops.lake` publishes
them: ``rankops ingest`` or the outcome event type write them). They join an answer by request id
(the answer's ``request_id``, as :func:`rankops.feedback.record.from_capture` reads it) and shown
position; :func:`rankops.release.ctr_judge.count_cohorts` counts and
:func:`rankops.release.ctr_judge.judge_cohorts` judges, exactly as the local canary.

A step in AWS is judged once, after its soak (the state machine has no "hold" loop): ``rollback``
fails the step; ``hold`` (before the horizon, or inside the noise) fails it when
``canary_outcomes = required`` and otherwise leaves the decision to the serving checks, the
evidence recorded either way; ``advance`` passes.

Runs in the release Lambda: standard library and boto3 here, pyarrow (from the AWS SDK for pandas
layer) inside :class:`rankops.lake.Lake` when outcomes are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from rankops.monitoring.data_capture import CapturedInvocation
from rankops.release.decisions import Action, Decision

OUTCOMES_DATASET = "outcomes"  # rankops.feedback.store.OUTCOMES_DATASET (a test keeps them equal)
RAW_ZONE_VARIABLE = "RANKOPS_LAKE__RAW"  # the lake's raw zone, set on the release Lambda by infra
MODES = ("required", "when_logged", "off")


def shown(invocations: Iterable[CapturedInvocation]) -> list[tuple[str, str, int]]:
    """``(variant, request_id, items shown)`` of each captured answer that is a ranking."""
    rows = []
    for inv in invocations:
        ranking = inv.response.get("ranking")
        if isinstance(ranking, list):
            request_id = inv.response.get("request_id") or inv.inference_id or inv.event_id
            rows.append((inv.variant, str(request_id), len(ranking)))
    return rows


def read_outcomes(raw_uri: str, since: datetime) -> list[tuple[str, int, str]]:
    """``(request_id, position, outcome)`` of the outcome events at or after ``since`` in the
    committed partitions of ``<raw_uri>/outcomes`` (empty when there are none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from rankops.lake import Lake

    lake = Lake.zone_reader("raw", raw_uri)
    parts = [
        p
        for p in lake.partitions("raw", OUTCOMES_DATASET)
        if datetime.strptime(f"{p.values['dt']} {p.values['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)
        + timedelta(hours=1)
        > since
    ]
    if not parts:
        return []
    table = lake.read("raw", OUTCOMES_DATASET, columns=["request_id", "position", "outcome", "ts"], partitions=parts)
    table = table.filter(pc.greater_equal(table["ts"], pa.scalar(since, table["ts"].type)))
    return list(
        zip(
            map(str, table["request_id"].to_pylist()),
            map(int, table["position"].to_pylist()),
            map(str, table["outcome"].to_pylist()),
            strict=True,
        )
    )


def decide(
    answers: list[tuple[str, str, int]],
    outcomes: list[tuple[str, int, str]],
    thresholds: Mapping[str, Any],
    window: dict[str, Any],
) -> Decision | None:
    """The canary step judged on CTR (and contact rate) by the environment's ``canary_*`` settings
    (``thresholds``: ``CHECK_THRESHOLDS``); ``None`` when ``canary_outcomes`` is ``off``."""
    from rankops.release import ctr_judge

    mode = str(thresholds.get("canary_outcomes", "when_logged"))
    if mode not in MODES:
        raise ValueError(f"canary_outcomes must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return None
    if not outcomes:
        why = f"no outcome events since the step began (release.canary_outcomes = {mode})"
        action: Action = "hold" if mode == "required" else "advance"
        return Decision(action, [f"outcomes not judged: {why}"], {"window": window, "outcome_events": 0})
    k = int(thresholds.get("canary_ctr_k", 10))
    counts = ctr_judge.count_cohorts(answers, outcomes, k)
    contact = float(thresholds.get("canary_contact_mde", 0.02))
    decision = ctr_judge.judge_cohorts(
        counts,
        ctr_mde=float(thresholds.get("canary_ctr_mde", 0.02)),
        contact_mde=contact or None,
        alpha=float(thresholds.get("canary_alpha", 0.05)),
        power=float(thresholds.get("canary_power", 0.8)),
    )
    evidence = {"window": window, "outcome_events": len(outcomes), "cohorts": counts, **decision.evidence}
    return Decision(decision.action, decision.reasons, evidence)


def blocks(decision: Decision | None, thresholds: Mapping[str, Any]) -> bool:
    """Whether the outcome judgement fails the step (see the module docstring)."""
    if decision is None:
        return False
    required = thresholds.get("canary_outcomes") == "required"
    return decision.action == "rollback" or (decision.action == "hold" and required)
