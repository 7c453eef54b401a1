"""``rankops simulate``: days of synthetic users against the real server, the batch jobs once per window.

Hour by hour the marketplace's users search (:mod:`.traffic`), the real inference server
(``build_server``, driven in-process through its ASGI app) answers and logs every answer to the
feedback log at the simulated time, and users click, contact and buy by the generator's truth
(:mod:`.outcomes`). Every ``drift_every_h`` hours the batch jobs run on that window: the drift job
against the training reference, and when a feature drifted, the retrain trigger with its real
cooldown and single-flight rules (:mod:`.trigger`). From ``campaign.day`` on a campaign sends a
share of searches to one category. Figures come from the lake (:mod:`.figures`), never from the
simulator's bookkeeping. What it does not do yet is listed in docs/simulate.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.errors import ConfigError, DataError
from rankops.feedback import store
from rankops.lake import Lake
from rankops.monitoring import drift_report as dr
from rankops.simulate import outcomes, traffic
from rankops.simulate.figures import window_figures
from rankops.simulate.trigger import Ledger, on_drift
from rankops.simulate.truth import spec_of, truth
from rankops.synthetic import CATEGORIES

if TYPE_CHECKING:
    from rankops.config import Settings


@dataclass(frozen=True)
class Sizes:
    """Small by default so a week stays within minutes on a laptop."""

    requests_per_day: int = 1000
    drift_every_h: int = 12
    k: int = 10
    campaign_share: float = 0.5

    def __post_init__(self) -> None:
        if self.requests_per_day < 24:
            raise ConfigError(f"--requests-per-day must be at least 24, got {self.requests_per_day}")
        if self.drift_every_h not in (1, 2, 3, 4, 6, 8, 12, 24):
            raise ConfigError(f"--drift-every-h must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24), got {self.drift_every_h}")
        if not 0 < self.campaign_share <= 1:
            raise ConfigError(f"--campaign-share must be in (0, 1], got {self.campaign_share}")


@dataclass
class Day:
    day: int
    date: str
    event: str
    checks: list[dict[str, Any]] = field(default_factory=list)  # one per drift window
    figures: dict[str, Any] = field(default_factory=dict)  # the whole day's figures


class Client:
    """POSTs to an ASGI app in-process (httpx on a private event loop)."""

    def __init__(self, app: Any) -> None:
        import httpx

        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rankops.simulate")

    def rank(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._loop.run_until_complete(self._client.post("/invocations", json=body))
        if response.status_code != 200:
            raise DataError(f"the server refused a simulated request ({response.status_code}): {response.text[:200]}")
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def start_of(settings: Settings) -> datetime:
    """The simulation starts where the marketplace's logged window ends."""
    spec = spec_of(Lake.from_settings(settings))
    return datetime(spec.start.year, spec.start.month, spec.start.day, tzinfo=UTC) + timedelta(days=spec.days)


class _Loop:
    """One simulation's moving parts: the lake, the truth, the server's feedback log, the ledger."""

    def __init__(self, settings: Settings, seed: int, sizes: Sizes, feedback: Any) -> None:
        from rankops.monitoring.score_drift import load_references

        self.settings, self.seed, self.sizes, self.feedback = settings, seed, sizes, feedback
        self.lake = Lake.from_settings(settings)
        self.world = truth(spec_of(self.lake))
        self.manifest = dr.reference_manifest(self.lake)
        self.load_references = load_references
        self.references: dict[str, dict[str, Any] | None] = {}
        path = settings.home / "simulate" / "executions.json"
        path.unlink(missing_ok=True)  # this run's trigger history only
        self.ledger = Ledger(path)
        self.cooldown = timedelta(hours=settings.aws.retrain_cooldown_hours)

    def figures(self, since: datetime, until: datetime) -> dict[str, Any]:
        versions = {v for v in store.read(self.lake, since, until)["model_version"].to_pylist() if v is not None}
        missing = sorted(versions - set(self.references))
        if missing:  # once per version and run: a version's training-time scores do not change
            self.references.update(self.load_references(self.settings, missing))
        references = {v: self.references[v] for v in versions}
        return window_figures(self.lake, self.settings, self.manifest, since, until, references, self.sizes.k)

    def batch(self, since: datetime, until: datetime) -> dict[str, Any]:
        """The window's batch jobs: flush the log, draw its outcomes, drift, the trigger when drifted."""
        self.feedback.stop()  # flushes what is queued
        self.feedback.start()
        logged = store.read(self.lake, since, until)
        outcomes.write(self.lake, self.world, logged, self.seed * 1_000_003 + int(since.timestamp()) // 3600)
        figures = self.figures(since, until)
        trigger = None
        if figures["drifted"]:
            why = f"drift: PSI {figures['max_psi']:.3f} > {figures['threshold']} on {', '.join(figures['drifted'])}"
            trigger = on_drift(self.ledger, until, why, self.cooldown)
        return {**figures, "trigger": trigger}


def simulate(
    settings: Settings,
    days: int,
    seed: int = 0,
    sizes: Sizes | None = None,
    campaign_category: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Day]:
    """Run ``days`` simulated days on the home of ``settings`` (prepared by ``rankops demo``)."""
    from rankops.serving.server import build_server

    sizes = sizes or Sizes()
    if not 1 <= days <= 31:
        raise ConfigError(f"--days must be between 1 and 31, got {days}")
    lake = Lake.from_settings(settings)
    mix = traffic.logged_mix(lake)
    start = start_of(settings)
    end = start + timedelta(days=days)
    if store.read(lake, start, end).num_rows:
        raise DataError(f"the feedback log already holds answers between {start:%Y-%m-%d} and {end:%Y-%m-%d}: "
                        "simulate on a fresh home (`rankops demo`)")  # fmt: skip
    campaign = traffic.Campaign(campaign_category or traffic.quietest_category(mix), sizes.campaign_share)
    if campaign.category not in CATEGORIES:
        raise ConfigError(f"--campaign-category must be one of {', '.join(CATEGORIES)}, got {campaign.category!r}")
    server = build_server(settings)
    if server.ranker.feedback is None:
        raise ConfigError("serving.feedback_log is off: the simulation reads everything from the feedback log")
    loop = _Loop(settings, seed, sizes, server.ranker.feedback)
    rng = np.random.default_rng(seed)
    searches = traffic.Searches(loop.world, mix, rng)
    now = [start.timestamp()]
    loop.feedback.clock = lambda: now[0]  # answers are logged at the simulated time
    loop.feedback.start()
    client = Client(server.app)
    result: list[Day] = []
    try:
        for d in range(days):
            day_start = start + timedelta(days=d)
            active = campaign if d >= campaign.day else None
            event = f"campaign: {campaign.share:.0%} of searches -> {campaign.category}" if active else "steady traffic"
            row = Day(d, f"{day_start:%Y-%m-%d}", event)
            counts = traffic.hourly_counts(sizes.requests_per_day, rng)
            for h in range(24):
                hour_ms = int((day_start + timedelta(hours=h)).timestamp() * 1000)
                for body in searches.hour(hour_ms, int(counts[h]), active):
                    now[0] = body["ts"]
                    client.rank(body)
                if (h + 1) % sizes.drift_every_h == 0:
                    until = day_start + timedelta(hours=h + 1)
                    row.checks.append(loop.batch(until - timedelta(hours=sizes.drift_every_h), until))
            row.figures = loop.figures(day_start, day_start + timedelta(days=1))
            result.append(row)
            if progress:
                progress(progress_line(row))
    finally:
        loop.feedback.stop()
        client.close()
        server.ranker.lookup.close()
    return result


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
