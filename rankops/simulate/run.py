"""``rankops simulate``: days of synthetic users against the real server, the release loop included.

Hour by hour the marketplace's users search (:mod:`.traffic`), the real inference server
(``build_server``, driven in-process through its ASGI app) answers and logs every answer to the
feedback log at the simulated time, and users click, contact and buy by the generator's truth
(:mod:`.outcomes`, written every hour). Every ``drift_every_h`` hours the drift job runs on that
window against the serving reference (:mod:`.reference`), and when a feature drifted, the retrain
trigger with its real cooldown and single-flight rules (:mod:`.trigger`). A started retrain runs the
deployed pipeline locally while simulated hours keep passing for its shadow and canary checks
(:mod:`.release`); on ``bad_day`` a ranker trained on shuffled labels enters the same pipeline.
Figures come from the lake (:mod:`.figures`), never from the simulator's bookkeeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.errors import ConfigError, DataError
from rankops.feedback import store
from rankops.lake import Lake
from rankops.simulate import outcomes, traffic
from rankops.simulate import release as releases
from rankops.simulate.figures import window_figures
from rankops.simulate.http_server import Client, HttpThread
from rankops.simulate.reference import serving_reference, simulation_settings
from rankops.simulate.trigger import Ledger, on_drift
from rankops.simulate.truth import spec_of, truth
from rankops.synthetic import CATEGORIES

if TYPE_CHECKING:
    from rankops.config import Settings


@dataclass(frozen=True)
class Sizes:
    """Small by default so a week stays within minutes on a laptop."""

    requests_per_day: int = 2000
    drift_every_h: int = 12
    k: int = 10
    campaign_share: float = 0.5
    bad_day: int | None = 4  # the shuffled-label challenger enters at the end of this day (None: never)
    max_check_hours: int = 48  # simulated hours a shadow or canary step may wait for its evidence
    canary_mde: float = 0.1  # the canary CTR test's minimum detectable effect (absolute), sized to the traffic
    gate_max_ndcg_drop: float = 0.02  # the offline gate's tolerance in the simulated deployment (docs/simulate.md)

    def __post_init__(self) -> None:
        if self.requests_per_day < 24:
            raise ConfigError(f"--requests-per-day must be at least 24, got {self.requests_per_day}")
        if self.drift_every_h not in (1, 2, 3, 4, 6, 8, 12, 24):
            raise ConfigError(f"--drift-every-h must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24), got {self.drift_every_h}")
        if not 0 < self.campaign_share <= 1:
            raise ConfigError(f"--campaign-share must be in (0, 1], got {self.campaign_share}")
        if not 0 < self.canary_mde < 1:
            raise ConfigError(f"--canary-mde must be in (0, 1), got {self.canary_mde}")
        if self.bad_day is not None and self.bad_day < 0:
            raise ConfigError(f"--bad-challenger-day must be 0 or later, got {self.bad_day}")


@dataclass
class Day:
    day: int
    date: str
    event: str
    checks: list[dict[str, Any]] = field(default_factory=list)  # one per drift window
    releases: list[dict[str, Any]] = field(default_factory=list)  # release steps and pipeline runs
    figures: dict[str, Any] = field(default_factory=dict)  # the whole day's figures


def start_of(settings: Settings) -> datetime:
    """The simulation starts where the marketplace's logged window ends."""
    spec = spec_of(Lake.from_settings(settings))
    return datetime(spec.start.year, spec.start.month, spec.start.day, tzinfo=UTC) + timedelta(days=spec.days)


class Simulation:
    """One simulation's moving parts: the server (in-process and over HTTP), the clock, the users,
    the ledger of executions, the serving reference, and the day rows being filled."""

    def __init__(self, settings: Settings, days: int, seed: int, sizes: Sizes, campaign: traffic.Campaign,
                 progress: Callable[[str], None] | None) -> None:  # fmt: skip
        from rankops.serving.server import build_server

        self.settings = simulation_settings(settings, sizes.canary_mde)
        self.days, self.seed, self.sizes, self.campaign, self.progress = days, seed, sizes, campaign, progress
        self.lake = Lake.from_settings(self.settings)
        self.world = truth(spec_of(self.lake))
        self.run_id = str(self.lake.read_json(self.lake.uri("raw", "_meta", "synthetic.json"))["run_id"])
        self.start = self.now = start_of(self.settings)
        self.server = build_server(self.settings)
        self.feedback = self.server.ranker.feedback
        if self.feedback is None:
            raise ConfigError("serving.feedback_log is off: the simulation reads everything from the feedback log")
        self.searches = traffic.Searches(self.world, traffic.logged_mix(self.lake), np.random.default_rng(seed))
        self.rng = np.random.default_rng(seed + 1)
        self.clock = [self.start.timestamp()]
        self.feedback.clock = lambda: self.clock[0]  # answers are logged at the simulated time
        self.references: dict[str, dict[str, Any] | None] = {}
        self.reference: dict[str, Any] | None = None  # taken from the first window a champion serves
        path = self.settings.home / "simulate" / "executions.json"
        path.unlink(missing_ok=True)  # this run's trigger history only
        self.ledger = Ledger(path)
        self.cooldown = timedelta(hours=self.settings.aws.retrain_cooldown_hours)
        self.hour, self.rows, self.counts = 0, list[Day](), np.zeros(24, dtype=int)
        self.latency_base: dict[str, Any] = {}
        self.pending: dict[str, Any] | None = None
        self.releasing, self.bad_done = False, False
        self.max_check_hours = sizes.max_check_hours
        self.http = HttpThread(self.server.app)
        self.client = Client(self.server.app)

    # -- life -------------------------------------------------------------------------------
    def __enter__(self) -> Simulation:
        assert self.feedback is not None
        self.feedback.start()
        self.server.shadow.start()
        if self.server.watcher is not None:
            self.server.watcher.start()
        self.http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.stop()
        if self.server.watcher is not None:
            self.server.watcher.stop()
        self.server.shadow.stop()
        assert self.feedback is not None
        self.feedback.stop()
        self.client.close()
        self.server.ranker.lookup.close()

    @property
    def finished(self) -> bool:
        return self.hour >= 24 * self.days

    def offpolicy_days(self) -> int:
        """Days from the simulation's start to the wall clock (the off-policy job's window)."""
        return max(1, (datetime.now(UTC) - self.start).days + 1)

    def flush(self) -> None:
        """Everything the server queued is in the feedback log."""
        assert self.feedback is not None
        self.feedback.stop()
        self.feedback.start()

    # -- time passes ------------------------------------------------------------------------
    def advance_hour(self) -> None:
        """One simulated hour: its searches answered, their outcomes drawn, the batch jobs when due."""
        if self.finished:
            return
        d, h = divmod(self.hour, 24)
        day_start = self.start + timedelta(days=d)
        active = self.campaign if d >= self.campaign.day else None
        if h == 0:
            event = (f"campaign: {self.campaign.share:.0%} of searches -> {self.campaign.category}" if active
                     else "steady traffic")  # fmt: skip
            self.rows.append(Day(d, f"{day_start:%Y-%m-%d}", event))
            self.counts = traffic.hourly_counts(self.sizes.requests_per_day, self.rng)
            self.latency_base = latency_counters(self.http.url)
        since = day_start + timedelta(hours=h)
        for body in self.searches.hour(int(since.timestamp() * 1000), int(self.counts[h]), active):
            self.clock[0] = body["ts"]
            self.client.rank(body)
        self.hour += 1
        self.now = since + timedelta(hours=1)
        self.flush()
        logged = store.read(self.lake, since, self.now)
        events, _ = outcomes.write(
            self.lake, self.world, logged, self.seed * 1_000_003 + int(since.timestamp()) // 3600
        )
        if logged.num_rows:  # the client's event stream: what the next retrain learns from
            values = {"dt": f"{since:%Y-%m-%d}", "hour": f"{since:%H}"}
            self.lake.write_partition("raw", "events", values, outcomes.as_events(logged, events), self.run_id)
        if (h + 1) % self.sizes.drift_every_h == 0:
            self.rows[-1].checks.append(self.batch(self.now - timedelta(hours=self.sizes.drift_every_h), self.now))
        if h == 23:
            row = self.rows[-1]
            row.figures = {**self.figures(day_start, self.now), "p99_ms": p99_ms(self.http.url, self.latency_base)}
            if self.progress:
                self.progress(progress_line(row))

    def figures(self, since: datetime, until: datetime) -> dict[str, Any]:
        from rankops.monitoring.score_drift import load_references

        versions = {v for v in store.read(self.lake, since, until)["model_version"].to_pylist() if v is not None}
        missing = sorted(versions - set(self.references))
        if missing:  # once per version and run: a version's training-time scores do not change
            self.references.update(load_references(self.settings, missing))
        assert self.reference is not None
        return window_figures(self.lake, self.settings, {"reference": self.reference}, since, until,
                              {v: self.references[v] for v in versions}, self.sizes.k)  # fmt: skip

    def batch(self, since: datetime, until: datetime) -> dict[str, Any]:
        """The window's batch jobs: drift against the serving reference, the trigger when drifted."""
        taken = self.reference is None
        if taken:  # the first window the current champion serves is what later windows are compared with
            self.reference = serving_reference(self.lake, self.settings, since, until)
        figures = self.figures(since, until)
        trigger = None
        if figures["drifted"] and not taken:
            why = f"drift: PSI {figures['max_psi']:.3f} > {figures['threshold']} on {', '.join(figures['drifted'])}"
            trigger = on_drift(self.ledger, until, why, self.cooldown)
            if trigger["started"]:
                self.pending = {"name": trigger["name"], "reason": why}
        return {**figures, "reference_window": taken, "trigger": trigger}

    # -- releases ---------------------------------------------------------------------------
    def release_event(self, action: str, result: dict[str, Any]) -> None:
        at = self.now.isoformat()
        if action in ("baseline", "route"):
            return
        entry = json.loads(json.dumps(result, default=str))
        if "action" in entry:  # a check's decision: advance, hold or rollback
            entry["action_taken"] = entry.pop("action")
        self.rows[-1].releases.append({"at": at, "action": action, **entry})

    def run_releases(self) -> None:
        """A retrain the trigger started, then the bad challenger once its day is over."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.releasing = True
            record = releases.retrain(self, f"simulate: {pending['reason']}")
            self.releasing = False
            self.ledger.finish(pending["name"], record.status)
            self.pipeline_event(f"retrain {pending['name']}", record)
            if record.status == "SUCCEEDED" and "Released" in [s.name for s in record.states]:
                self.reference = None  # the new champion's first window becomes the reference
        bad = self.sizes.bad_day
        if bad is not None and not self.bad_done and self.hour >= 24 * (bad + 1) and not self.finished:
            self.bad_done = True
            version, record = releases.bad_challenger(self, self.seed)
            self.pipeline_event(f"bad challenger v{version} (shuffled labels)", record)

    def pipeline_event(self, what: str, record: Any) -> None:
        names = [s.name for s in record.states]
        output = record.output or {}
        offpolicy = (output.get("offpolicy") or {}).get("result") or {}
        gate = (output.get("gate") or {}).get("result") or {}
        self.rows[-1].releases.append({
            "at": self.now.isoformat(), "action": "pipeline", "what": what, "status": record.status,
            "states": names, "gate": {k: gate.get(k) for k in ("version", "promote", "reasons")},
            "offpolicy": {k: offpolicy.get(k) for k in ("decision", "reasons", "stop")},
            "stopped_by": stopped_by(names), "error": record.error,
        })  # fmt: skip


def latency_counters(url: str) -> dict[str, Any]:
    from rankops.release.evidence import fetch_metrics, request_counters

    return request_counters(fetch_metrics(url))


def p99_ms(url: str, base: dict[str, Any]) -> float | None:
    """The 99th percentile of the server's request latency since ``base`` (its Prometheus
    histogram, all variants: the feedback log does not record latency)."""
    from rankops.release.decisions import histogram_quantile
    from rankops.release.evidence import counters_since

    buckets: dict[float, float] = {}
    for per in counters_since(latency_counters(url), base).values():
        for le, n in per["buckets"].items():
            buckets[float(le)] = buckets.get(float(le), 0.0) + n
    p99 = histogram_quantile(0.99, sorted(buckets.items()))
    return None if p99 is None else round(p99 * 1000, 1)


def stopped_by(states: list[str]) -> str | None:
    """Which step stopped a release (None: it was released)."""
    if "Released" in states:
        return None
    for state, step in (("OffPolicyRejected", "off-policy gate"), ("Rejected", "gate"),
                        ("ShadowRejected", "shadow"), ("CanaryFailed", "canary")):  # fmt: skip
        if state in states:
            return step
    return "pipeline failure"


def simulate(
    settings: Settings,
    days: int,
    seed: int = 0,
    sizes: Sizes | None = None,
    campaign_category: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Day]:
    """Run ``days`` simulated days on the home of ``settings`` (prepared by ``rankops demo``)."""
    sizes = sizes or Sizes()
    if not 1 <= days <= 31:
        raise ConfigError(f"--days must be between 1 and 31, got {days}")
    lake = Lake.from_settings(settings)
    start = start_of(settings)
    end = start + timedelta(days=days)
    if store.read(lake, start, end).num_rows:
        raise DataError(f"the feedback log already holds answers between {start:%Y-%m-%d} and {end:%Y-%m-%d}: "
                        "simulate on a fresh home (`rankops demo`)")  # fmt: skip
    campaign = traffic.Campaign(campaign_category or traffic.quietest_category(traffic.logged_mix(lake)),
                                sizes.campaign_share)  # fmt: skip
    if campaign.category not in CATEGORIES:
        raise ConfigError(f"--campaign-category must be one of {', '.join(CATEGORIES)}, got {campaign.category!r}")
    with Simulation(settings, days, seed, sizes, campaign, progress) as sim:
        while not sim.finished:
            sim.advance_hour()
            sim.run_releases()
    return sim.rows


def progress_line(day: Day) -> str:
    f = day.figures
    decisions = [c["trigger"] for c in day.checks if c["trigger"]]
    started = sum(1 for t in decisions if t["started"])
    return (f"day {day.day} ({day.date}): {f['answers']} answers, max PSI {f['max_psi']:.3f}, "
            f"drifted {', '.join(f['drifted']) or 'none'}, retrains started {started}")  # fmt: skip


def to_json(days: list[Day]) -> list[dict[str, Any]]:
    return [asdict(d) for d in days]


def dumps(days: list[Day]) -> str:
    return json.dumps(to_json(days), indent=2, default=str)
