"""Releases inside the simulation: the deployed pipeline, run locally, against simulated users.

A started retrain runs the real local pipeline (:func:`rankops.pipeline.local.run_local`: the
definition CDK deploys, its jobs in subprocesses, its Lambdas' handlers): processing, training,
the offline gate, the off-policy gate on the feedback log the simulated traffic produced, then
the shadow and the canary ramp. Its release Lambda opens the endpoint ``local:<home>``; while a
simulation runs, that name opens :class:`SimulatedEndpoint`, the local endpoint whose checks let
simulated hours pass (users keep arriving, the server answers, they click) until the evidence
decides, instead of replaying logged requests at wall-clock speed. Everything else (the release
state, the aliases, the shadow's KL and rank correlation, the CTR judge) is the local endpoint's.

The bad challenger (a ranker trained on shuffled labels) enters the same pipeline after the offline
gate, as one whose offline evaluation was fooled would: from ``OffPolicy`` on (``--from``), with
the last retrain's recorded input and its own evaluation record.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rankops import registry
from rankops.release import endpoint as endpoints
from rankops.release.endpoint import LOCAL_PREFIX
from rankops.release.local_endpoint import LocalEndpoint

Simulation = Any  # rankops.simulate.run.Simulation (which imports this module): its settings, server,
# http, now, lake, advance_hour(), flush(), release_event(), offpolicy_days(), max_check_hours, finished

_ACTIVE: list[Simulation] = []  # the simulation whose endpoint ``local:<home>`` opens (one at a time)


class SimulatedEndpoint(LocalEndpoint):
    """The local endpoint of a running simulation: its server, its clock, its users."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.name = LOCAL_PREFIX + str(sim.settings.home)
        self.settings = sim.settings

    @classmethod
    def open(cls, home: str) -> SimulatedEndpoint:
        sim = _ACTIVE[-1]
        if str(sim.settings.home) != home:
            from rankops.errors import ReleaseError

            raise ReleaseError(f"the simulation runs on {sim.settings.home}, not on {home}")
        return cls(sim)

    def _server(self) -> str:
        return self.sim.http.url

    def run(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        result = super().run(action, event)
        if action in ("deploy", "shadow", "canary", "promote", "rollback"):
            self._restamp()
        self.sim.release_event(action, result)
        return result

    def _restamp(self) -> None:
        """The step began at the simulated time (the CTR judge counts answers since then)."""
        from rankops.release import local
        from rankops.release.state import state_path, write_state

        state = local.current_state(self.settings)
        write_state(state_path(self.settings.home), replace(state, updated=self.sim.now.timestamp()))

    def _check(self, max_requests: int = 0, batch: int = 0, settle_s: float = 0.0) -> dict[str, Any]:
        """Simulated hours pass until the evidence decides, or ``sim.max_check_hours`` passed."""
        from rankops.release import local

        hours = 0
        while True:
            state = local.current_state(self.settings)
            decision = self._decide(state)
            if decision.action != "hold" or hours >= self.sim.max_check_hours or self.sim.finished:
                result = {"ok": decision.ok, **decision.as_dict(), "mode": state.mode, "hours": hours,
                          "share": state.canary_share}  # fmt: skip
                if state.mode == "shadow":
                    result["shadow"] = self._shadow_figures(state)
                return result  # recorded once, by run()
            self.sim.advance_hour()
            hours += 1

    def _shadow_figures(self, state: Any) -> dict[str, Any]:
        from rankops.release import local
        from rankops.release.evidence import shadow_summary

        summary = shadow_summary(local.shadow_dir(self.settings), state.champion, state.challenger,
                                 self.settings.release.shadow_bins)  # fmt: skip
        return {k: summary.get(k) for k in ("requests", "kl_divergence", "spearman_mean")}

    def _decide(self, state: Any) -> Any:
        """The local endpoint's evidence, with the CTR window ending at the simulated time."""
        from rankops.release import ctr_judge, local

        self.sim.flush()
        if state.mode == "shadow":
            self.sim.server.shadow.drain()
            self.sim.server.shadow.write_report()
            return local.shadow_evidence(self.settings, state)
        serving_only = self.settings.model_copy(
            update={"release": self.settings.release.model_copy(update={"canary_outcomes": "off"})}
        )
        serving = local.canary_evidence(serving_only, state, self.sim.http.url)
        if state.mode == "canary" and state.canary_share >= 1.0:
            # every user is in the canary cohort: no control to compare clicks with (the CTR was
            # judged at the previous step); the serving checks decide this one
            return serving
        return ctr_judge.with_outcomes(serving, ctr_judge.outcome_decision(self.settings, state, now=self.sim.now))


@contextlib.contextmanager
def installed(sim: Simulation) -> Iterator[None]:
    """``local:<home>`` opens the simulation's endpoint, and the pipeline's jobs (subprocesses reading
    their settings from the environment) run with the simulated deployment's configuration
    (:func:`deployment`)."""
    kinds: dict[str, str] = endpoints._KINDS  # the endpoint-name schemes (a private registry, by design one)
    before = kinds[LOCAL_PREFIX]
    variables = deployment(sim)
    env_before = {k: os.environ.get(k) for k in variables}
    kinds[LOCAL_PREFIX] = f"{__name__}:SimulatedEndpoint"
    os.environ.update(variables)
    _ACTIVE.append(sim)
    try:
        yield
    finally:
        _ACTIVE.pop()
        kinds[LOCAL_PREFIX] = before
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def deployment(sim: Simulation) -> dict[str, str]:
    """The simulated deployment's settings for the jobs: the off-policy window reaches back from the
    wall clock to the simulated days (the job judges the last ``gate.offpolicy_days`` before *its*
    clock), and the offline gate tolerates ``sim.sizes.gate_max_ndcg_drop`` (its holdout is a day of
    simulated clicks, position-biased toward the champion that produced them; docs/simulate.md)."""
    return {
        "RANKOPS_GATE__OFFPOLICY_DAYS": str(sim.offpolicy_days()),
        "RANKOPS_GATE__MAX_NDCG_DROP_RELATIVE": str(sim.sizes.gate_max_ndcg_drop),
    }


def retrain(sim: Simulation, reason: str) -> Any:
    """The whole pipeline for a retrain the trigger started."""
    from rankops.pipeline.local import run_local

    with installed(sim):
        return run_local(sim.settings, {"snapshot": "latest", "reason": reason[:200]}, timeout_s=3600)


def shuffled_challenger(sim: Simulation, seed: int) -> str:
    """Train a ranker on the simulated feedback with its click labels shuffled (it learns nothing
    users want) on the champion's features, and register it; its version. The slates are the
    randomised answers' (the only ones that log their features)."""
    import lightgbm as lgb
    import pandas as pd

    from rankops.ope import feedback_eval

    champion = registry.alias_version(sim.settings, registry.CHAMPION)
    names = list(registry.load_version_booster(sim.settings, str(champion)).feature_name())
    slates = feedback_eval.load(sim.lake)
    frame = pd.DataFrame({n: slates.features[n] for n in names})
    rows = slates.rows.reset_index(drop=True)
    label = np.random.default_rng(seed).permutation(rows["click"].clip(upper=1).to_numpy())
    order = np.argsort(rows["request_id"].to_numpy(), kind="stable")
    groups = rows["request_id"].iloc[order].value_counts(sort=False).sort_index().to_numpy()
    params = {"objective": "lambdarank", "num_leaves": 15, "min_data_in_leaf": 20, "verbosity": -1,
              "num_threads": 2, "seed": seed}  # fmt: skip
    data = lgb.Dataset(frame.iloc[order].to_numpy(), label[order], group=groups, feature_name=names)
    booster = lgb.train(params, data, 30)
    registered = registry.log_ranker(
        sim.settings, booster, params={"trees": booster.num_trees(), "labels": "shuffled"}, metrics={},
        history={}, input_example=frame.head(3), tags={"rankops.simulate": "bad challenger (shuffled labels)"},
    )  # fmt: skip
    _lineage(sim, registered, champion, slates.requests)
    return str(registered.version)


def _lineage(sim: Simulation, registered: Any, champion: Any, requests: int) -> None:
    """Its lineage record, as the evaluation job writes one for a trained version (the pipeline's
    ``Register`` refuses a version without): made from the feedback log, not a processed dataset."""
    from rankops import lineage
    from rankops.feedback.log import LOCAL_ENDPOINT, capture_uri

    root = sim.lake.zone_uri("artifacts")
    feedback_log = f"{capture_uri(sim.lake)}/{LOCAL_ENDPOINT}"
    base = lineage.read_record(root, sim.settings.mlflow.model_name, str(champion))
    record = lineage.LineageRecord(
        model_name=sim.settings.mlflow.model_name, model_version=str(registered.version),
        dataset_hash=f"feedback-log-shuffled-{requests}", dataset_manifest_uri=feedback_log,
        feature_set_version=base.feature_set_version, run_id=registered.run_id, code_version=base.code_version,
        pipeline_execution_id="simulate", details={"labels": "clicks of the feedback log, shuffled",
                                                    "requests": requests},
        events=[{"type": "registered", "at": lineage.now_iso()}],
    )  # fmt: skip
    written = lineage.write_record(root, record)
    registry.set_version_tags(sim.settings, str(registered.version), {"lineage_uri": written})


def bad_challenger(sim: Simulation, seed: int) -> tuple[str, Any]:
    """The shuffled-label ranker through the pipeline from ``OffPolicy`` (its offline gate fooled):
    the last recorded execution's input for that state, with this challenger's evaluation record."""
    from rankops.pipeline import runner
    from rankops.pipeline.local import resume_input, run_local

    version = shuffled_challenger(sim, seed)
    champion = registry.alias_version(sim.settings, registry.CHAMPION)
    state_input = resume_input(sim.settings.home, "OffPolicy")
    lake, previous = sim.lake, state_input["execution"]
    execution = f"simulate-bad-{uuid.uuid4().hex[:8]}"
    evaluation = lake.read_json(_evaluation_uri(lake, previous))
    gate_uri = lake.uri("artifacts", "gate", "simulate", f"v{version}", "record.json")
    lake.write_json(gate_uri, {**lake.read_json(evaluation["gate_uri"]), "version": version})
    evaluation = {**evaluation, "version": version, "champion_version": champion, "gate_uri": gate_uri}
    lake.write_json(_evaluation_uri(lake, execution), evaluation)
    result = {**state_input["gate"]["result"], "version": version, "champion_version": champion}
    state_input = {**state_input, "execution": execution, "gate": {**state_input["gate"], "result": result}}
    entered = {"type": "OffPolicyStateEntered", "timestamp": 0.0,
               "stateEnteredEventDetails": {"name": "OffPolicy", "input": _json(state_input)}}  # fmt: skip
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"  # history sorts by name, newest first: resumed from here
    record = runner.ExecutionRecord(f"{stamp}-{execution}", "FAILED", 0, 0, {}, None, None, None, events=[entered])
    runner.save(sim.settings.home, record)
    with installed(sim):
        return version, run_local(sim.settings, {}, start="OffPolicy", timeout_s=3600)


def _evaluation_uri(lake: Any, execution: str) -> str:
    return str(lake.uri("artifacts", "pipeline", execution, "evaluation", "evaluation", "evaluation.json"))


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)
