"""The ranking core: request in, ranked response out. No HTTP, no set-up.

Everything expensive (models, store connections, config) is built once by
:mod:`rankops.serving.server`; :meth:`Ranker.rank` is the per-request hot path.

The fallback chain, each level tried only if the one above cannot answer:

1. the routed model (``champion``, or ``challenger`` for a canary user),
2. the small ``fallback`` model,
3. the ``rule`` baseline (:func:`rankops.training.baseline.rule_scores`),
4. ``input_order``: the candidates as given, if even the rule cannot run (or every
   input it reads is unavailable: scoring registry defaults would only echo the
   input order under the rule's name).

When a store fails, the fallback levels (2 and 3) read the features it held from the
server's item snapshot (:mod:`rankops.serving.snapshot`: the last values read for each
item), so a model still ranks through an outage; the routed model never does.

A model level is skipped when it is not loaded, when a feature it reads is
unavailable because its store failed (registry defaults stand in for *missing*
items, never for a failed store: a model scoring defaults would rank by noise
without anyone noticing), or when scoring raises or returns non-finite scores.
The response's ``variant`` names the level that answered and ``fallback`` says
why the levels above it did not, in coarse codes (:mod:`rankops.serving.reasons`; the details
go to the server log only).

Store reads share the request's latency budget (``serving.latency_budget_ms``,
counted from when the request arrived): a read that the remaining budget cannot
cover is skipped, and a failed or skipped read of a joined entity (seller,
category) only makes *its* features unavailable, so a level that does not read
them can still answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.errors import ModelError, RequestError
from rankops.features import on_demand
from rankops.features import registry as feature_registry
from rankops.features.lookup import ROOT
from rankops.monitoring.metrics import ServingMetrics
from rankops.serving import reasons, stream_reads
from rankops.serving.exploration import Explorer
from rankops.serving.request_ids import new_request_id
from rankops.serving.routing import Routing
from rankops.training.baseline import RULE_INPUTS, rule_scores

if TYPE_CHECKING:
    from rankops.features.lookup import FeatureLookup
    from rankops.features.stream_lookup import StreamLookup
    from rankops.feedback.log import FeedbackLog
    from rankops.serving.model import LoadedModel
    from rankops.serving.schema import RankRequest
    from rankops.serving.shadow import ShadowScorer
    from rankops.serving.snapshot import ItemSnapshot


@dataclass(frozen=True)
class Features:
    columns: dict[str, np.ndarray]  # stored (fetched, defaulted or inline) and on-demand columns
    unavailable: frozenset[str]  # features that hold defaults only because their store failed
    problems: tuple[reasons.Reason, ...] = ()
    from_snapshot: bool = False  # failed stores' features were filled from the item snapshot


def _matrix(columns: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.column_stack([columns[name] for name in names])


class Ranker:
    def __init__(
        self,
        lookup: FeatureLookup,
        routing: Routing,
        fallback: LoadedModel | None = None,
        metrics: ServingMetrics | None = None,
        score_sample: int = 8,
        shadow: ShadowScorer | None = None,
        latency_budget_s: float | None = None,
        feedback: FeedbackLog | None = None,
        explorer: Explorer | None = None,
        stream: StreamLookup | None = None,
        snapshot: ItemSnapshot | None = None,
    ) -> None:
        self.lookup = lookup
        self.explorer = explorer or Explorer()  # which users get randomised answers (off by default)
        self._stream_wanted: frozenset[str] = frozenset()  # streaming features a loaded model reads
        self.snapshot = snapshot  # the fallback levels' copy of item features (None: no outage ranking)
        self.feedback = feedback  # every answer is logged through it, off the request path (invocations)
        self.latency_budget_s = latency_budget_s  # store reads share it (None: no deadline)
        self.fallback = fallback
        self.metrics = metrics or ServingMetrics()
        self.score_sample = score_sample
        # streaming features (rankops.serving.stream_reads); without stores: counted defaults
        self.stream = stream if stream is not None else stream_reads.build_stream_lookup({}, self.metrics)
        self._positions: dict[int, list[int]] = {}
        self.shadow = shadow
        stored = [f for e in feature_registry.stored_entities() for f in feature_registry.stored_features(e)]
        self._entity_of = {
            f.name: e for e in feature_registry.stored_entities() for f in feature_registry.stored_features(e)
        }
        self.details = reasons.DetailLog()  # why answers degraded, for the server log only
        self._stored_defaults = {f.name: f.default for f in stored}
        self._derived = {f.name: frozenset(f.inputs) for f in feature_registry.on_demand_features()}
        self.routing = routing
        self.set_routing(routing)
        if shadow is not None:
            shadow.reset(routing.champion, routing.challenger)
        if fallback is not None and fallback.version.isdigit():
            self.metrics.model_version.labels("fallback").set(float(fallback.version))

    @property
    def model(self) -> LoadedModel | None:
        """The champion (kept for callers that serve one model)."""
        return self.routing.champion

    def set_routing(self, routing: Routing) -> None:
        """Switch releases: one reference assignment, picked up by the next request."""
        before = self.routing
        self.routing = routing
        for role, model in (("champion", routing.champion), ("challenger", routing.challenger)):
            self.metrics.model_version.labels(role).set(
                float(model.version) if model and model.version.isdigit() else 0
            )
        if routing.previous is not None and routing.previous.version.isdigit():
            self.metrics.model_version.labels("previous").set(float(routing.previous.version))
        self.metrics.canary_share.set(routing.canary_share)
        loaded = [m.feature_names for m in (routing.champion, routing.challenger, self.fallback) if m is not None]
        self._stream_wanted = stream_reads.wanted(loaded)
        if self.shadow is not None and before.describe() != routing.describe():
            self.shadow.reset(routing.champion, routing.challenger)

    # -- features ---------------------------------------------------------------------------------
    def features(self, request: RankRequest, deadline: float | None = None) -> Features:
        """Stored features (one batched read per store, unless all are inline), then on-demand ones.
        ``deadline`` (``time.perf_counter()`` seconds): no store read starts that it cannot cover."""
        count = len(request.candidates)
        to_fetch = [name for name in self._stored_defaults if name not in request.features]
        columns: dict[str, np.ndarray] = {}
        unavailable: frozenset[str] = frozenset()
        problems: list[reasons.Reason] = []
        joins: dict[str, list[str | None]] = {}  # the candidates' seller/category keys, for streaming reads
        if to_fetch:
            try:
                fetched = self.lookup.fetch_items(
                    request.candidates, deadline=deadline, partial=True, join_keys=bool(self._stream_wanted)
                )
            except Exception as err:  # a failed or skipped store: the chain decides who can still answer
                # the candidates' own read failed (joined reads fail softly): their store is out
                problems = reasons.store_unavailable([ROOT], f"features unavailable: {err}")
                unavailable = frozenset(to_fetch)
                columns = {name: np.full(count, self._stored_defaults[name]) for name in to_fetch}
            else:
                columns, joins = dict(fetched.columns), fetched.joins
                self.metrics.candidates_missing.inc(count - int(np.count_nonzero(fetched.found)))
                unavailable = fetched.unavailable.intersection(to_fetch)
                if self.snapshot is not None and not fetched.unavailable:
                    self.snapshot.observe(request.candidates, fetched.columns, fetched.found)
                if unavailable:
                    detail = f"features unavailable: {'; '.join(fetched.problems)}"
                    problems = reasons.store_unavailable(self._entities(unavailable), detail)
        now = request.ts if request.ts is not None else time.time()
        if self._stream_wanted - request.features.keys():
            columns.update(stream_reads.stream_columns(self.stream, request.candidates, joins, now, deadline))
        columns.update(request.features)
        category = on_demand.category_code(request.context.get("category"))
        columns.update(on_demand.compute(columns, now, category))
        if unavailable:
            unavailable |= {name for name, inputs in self._derived.items() if inputs & unavailable}
        return Features(columns, unavailable, tuple(problems))

    def _entities(self, names: frozenset[str] | list[str]) -> list[str]:
        """The stored entities whose features ``names`` hold (registry order)."""
        hit = {self._entity_of[n] for n in names if n in self._entity_of}
        return [e for e in feature_registry.stored_entities() if e in hit]

    # -- the chain --------------------------------------------------------------------------------
    def rank(self, request: RankRequest, started: float | None = None) -> dict[str, Any]:
        """Rank the candidates; never raises for a failing dependency (only ``RequestError``)."""
        return self.answer(request, started)[0]

    def answer(self, request: RankRequest, started: float | None = None) -> tuple[dict[str, Any], str]:
        """:meth:`rank`'s response and the cohort the user was routed to (``champion``,
        ``challenger``; what the feedback log files the answer under, as data capture files it
        under the endpoint variant that answered)."""
        started = time.perf_counter() if started is None else started
        routing = self.routing
        variant, model = routing.route(request.user_id, request.target_variant)
        if request.target_variant is not None and model is None:
            raise RequestError(f"no {request.target_variant} model is loaded on this server")
        return self._chain(request, started, routing, variant, model), variant

    def _chain(
        self, request: RankRequest, started: float, routing: Routing, variant: str, model: LoadedModel | None
    ) -> dict[str, Any]:
        """The fallback chain below the routed ``model`` (module docstring)."""
        problems: list[reasons.Reason] = []
        deadline = started + self.latency_budget_s if self.latency_budget_s is not None else None
        try:
            features = self.features(request, deadline)
        except Exception as err:  # e.g. a malformed stored value; nothing can score
            return self._respond(request, variant, "input_order", None, None, [reasons.features_failed(err)], started)
        problems.extend(features.problems)
        for level, candidate in ((variant, model), ("fallback", self.fallback)):
            if candidate is None:
                problems.append(reasons.model_missing(level))
                continue
            if level == "fallback":
                features = self._with_snapshot(request, features, problems)
            blocked = features.unavailable.intersection(candidate.feature_names)
            if blocked:
                problems.append(reasons.features_unavailable(level, sorted(blocked)))
                continue
            try:
                scores = candidate.predict(_matrix(features.columns, candidate.feature_names))
                if scores.shape != (len(request.candidates),) or not np.isfinite(scores).all():
                    raise ModelError(f"returned {scores.shape} scores, not all finite")
            except Exception as err:  # a model that cannot score must not take the request down
                problems.append(reasons.score_failed(level, candidate.version, err))
                continue
            if level == "champion" and routing.shadow is not None and self.shadow is not None:
                self.shadow.submit(routing.shadow, features.columns, scores)
            return self._respond(request, variant, level, candidate.version, scores, problems, started, features)
        features = self._with_snapshot(request, features, problems)
        if features.unavailable.issuperset(RULE_INPUTS):
            problems.append(reasons.features_unavailable("rule", list(RULE_INPUTS)))
            return self._respond(request, variant, "input_order", None, None, problems, started)
        try:
            scores = rule_scores(features.columns)
            if not np.isfinite(scores).all():  # every level checks its scores before answering
                raise ModelError("the rule baseline returned non-finite scores")
        except Exception as err:
            problems.append(reasons.score_failed("rule", None, err))
            return self._respond(request, variant, "input_order", None, None, problems, started)
        return self._respond(request, variant, "rule", None, scores, problems, started, features)

    def _with_snapshot(self, request: RankRequest, features: Features, problems: list[reasons.Reason]) -> Features:
        """``features`` with what the snapshot holds in place of failed stores' features (for the
        fallback levels); unchanged when nothing failed, there is no snapshot, or it covers too little."""
        if not features.unavailable or self.snapshot is None or features.from_snapshot:
            return features
        filled = self.snapshot.fill(request.candidates, features.unavailable)
        if filled is None:
            return features
        restored, covered = filled
        columns = {**features.columns, **restored}
        columns.update(request.features)
        now = request.ts if request.ts is not None else time.time()
        columns.update(on_demand.compute(columns, now, on_demand.category_code(request.context.get("category"))))
        unavailable = features.unavailable.difference(restored)
        unavailable = unavailable.difference(n for n, inputs in self._derived.items() if not inputs & unavailable)
        problems.append(reasons.snapshot_used(covered, len(request.candidates)))
        return Features(columns, frozenset(unavailable), features.problems, from_snapshot=True)

    def _respond(
        self,
        request: RankRequest,
        variant: str,
        level: str,
        version: str | None,
        scores: np.ndarray | None,
        problems: list[reasons.Reason],
        started: float,
        features: Features | None = None,
    ) -> dict[str, Any]:
        count = len(request.candidates)
        # only the routed model's own answer is randomised (rankops.serving.exploration)
        policy = "deterministic"
        if scores is not None and level == variant:
            policy = self.explorer.policy(request.user_id, forced=request.target_variant is not None)
        propensities: list[float] = [1.0] * count
        if scores is None:
            order: list[int] = list(range(count))
            ranked: list[float] = [0.0] * count
        else:
            idx, shown_p = self.explorer.arrange(request, scores, policy)
            order, ranked, propensities = idx.tolist(), scores[idx].tolist(), shown_p.tolist()
            if self.score_sample:
                sample = self.metrics.score.labels(level)
                for pos in self._sample_positions(count):
                    sample.observe(ranked[pos])
        candidates = request.candidates
        degraded = level != variant
        m = self.metrics
        m.candidates.inc(count)
        if degraded:
            m.fallback.labels(variant, level).inc()
            self.details.record(level, problems)
        m.request_seconds.labels(variant, "degraded" if degraded else "ok").observe(time.perf_counter() - started)
        response: dict[str, Any] = {
            "ranking": [{"item_id": candidates[i], "score": s} for i, s in zip(order, ranked, strict=True)],
            "model_version": version,
            "variant": level,
            "fallback": reasons.client_text(problems) if degraded else None,
            "request_id": request.request_id or new_request_id(),
            "propensities": propensities,
            "policy": policy,
        }
        if policy != "deterministic" and features is not None:  # what data capture needs for OPE
            logged = self.explorer.logged_features(policy, features.columns, idx)
            if logged is not None:
                response["logged_features"] = logged
        return response

    def _sample_positions(self, count: int) -> list[int]:
        """Evenly spaced ranks (first and last included) whose scores feed the score histogram; cached per count."""
        positions = self._positions.get(count)
        if positions is None:
            spaced = np.linspace(0, count - 1, min(self.score_sample, count))
            positions = self._positions[count] = sorted({round(float(p)) for p in spaced})
        return positions

    def describe(self) -> dict[str, Any]:
        return {
            **self.routing.describe(),
            "fallback_model": self.fallback.version if self.fallback else None,
            "shadow": self.shadow.summary() if self.shadow is not None and self.routing.shadow is not None else None,
        }
