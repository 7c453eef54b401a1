"""The inference server's one assembly point: stores, models, routing, metrics and background
threads built once (:func:`build_server`) and run under uvicorn (:func:`run`); used by the
container's ``serve`` entry (:mod:`sagemaker_jobs.serve.entry`), ``rankops serve`` and tests.

From a model directory (the container: the model extracted to ``/opt/ml/model`` or
``SM_MODEL_DIR``, an optional fallback model in its ``fallback/`` folder) variants and traffic
shifting belong to the endpoint (:mod:`rankops.release.sagemaker`).

Locally the models come from the MLflow registry: the versions named by the
release state (``RANKOPS_HOME/release/state.json``), or the ``champion`` alias
before any release, and the fallback model's champion. A missing model degrades
the chain (the server still answers, with the reason); in a container (the ``serve``
entry) a missing or broken model directory fails start-up, so a bad deployment
never turns healthy.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rankops import integrity
from rankops.config import Settings
from rankops.errors import ModelError
from rankops.features import registry as feature_registry
from rankops.features.lookup import FeatureLookup
from rankops.features.online.base import OnlineStore
from rankops.features.online.factory import open_stores
from rankops.feedback.log import FeedbackLog
from rankops.lake import Lake
from rankops.monitoring.answer_summary import AnswerSummary
from rankops.monitoring.metrics import INSTANCE_ENV, MULTIPROC_ENV, ServingMetrics, job_metrics_dir, new_instance
from rankops.release.state import ReleaseState, read_state, state_path
from rankops.serving import model as models
from rankops.serving.core import Ranker
from rankops.serving.exploration import Explorer
from rankops.serving.guard import CircuitBreaker, GuardedStore
from rankops.serving.http import create_app
from rankops.serving.invocations import Limits
from rankops.serving.release_watch import ReleaseWatcher, signature
from rankops.serving.routing import Routing, build_routing
from rankops.serving.shadow import ShadowScorer
from rankops.serving.snapshot import for_fallback_levels
from rankops.serving.snapshot_warm import start_seeding
from rankops.serving.stream_reads import build_stream_lookup

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger("rankops.serving")
SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")
SETTINGS_ENV = "RANKOPS_SERVE_SETTINGS"  # settings handed to worker processes (JSON; no "__": not an override)
# the files prometheus-client's multiprocess mode writes: <type>_<pid>.db
PROMETHEUS_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")


@dataclass
class Server:
    ranker: Ranker
    app: Starlette
    watcher: ReleaseWatcher | None
    shadow: ShadowScorer


def store_timeout_cap_s(settings: Settings) -> float:
    """Every connect and read timeout of the serving path's store clients: at most a quarter of the
    latency budget, so one call (connect + read, one attempt) takes at most half of it, and a read
    started while half the budget remains (the lookup's rule) ends within the budget."""
    return settings.serving.latency_budget_ms / 4000


def guarded_lookup(
    settings: Settings, metrics: ServingMetrics, stores: dict[str, OnlineStore] | None = None
) -> FeatureLookup:
    """One guard (timing, error counts, circuit breaker) per store client. Entities that share a
    client share its guard, so the lookup still reads them in one round trip. The clients are the
    serving path's: one attempt per call, timeouts within the latency budget (materialization
    builds its own, retrying clients)."""
    cfg = settings.serving
    raw = stores or open_stores(
        settings, feature_registry.stored_entities(), serving_timeout_s=store_timeout_cap_s(settings)
    )
    guards: dict[int, GuardedStore] = {}
    for store in raw.values():
        if id(store) not in guards:
            guards[id(store)] = GuardedStore(
                store,
                CircuitBreaker(cfg.breaker_failures, cfg.breaker_reset_ms / 1000),
                metrics,
                cfg.store_timeout_ms / 1000,
            )
    return FeatureLookup({entity: guards[id(store)] for entity, store in raw.items()})


def model_dir_from_environment(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if os.environ.get("SM_MODEL_DIR"):
        return Path(os.environ["SM_MODEL_DIR"])
    return SAGEMAKER_MODEL_DIR if (SAGEMAKER_MODEL_DIR / "MLmodel").is_file() else None


def check_gated(model_dir: Path) -> None:
    """Refuse (:class:`rankops.integrity.IntegrityError`) a model folder whose files are not the ones
    the gate judged, when the release step said which (``RANKOPS_MODEL_SHA256``)."""
    gated = os.environ.get(integrity.MODEL_DIGEST_ENV, "")
    if gated:
        integrity.verify_folder(model_dir, gated)
    else:
        log.warning("%s is not set: serving %s unverified", integrity.MODEL_DIGEST_ENV, model_dir)


def _initial_state(settings: Settings) -> ReleaseState:
    from rankops.release.local import state_from_aliases

    return read_state(state_path(settings.home)) or state_from_aliases(settings)


def build_server(
    settings: Settings, model_dir: Path | None = None, stores: dict[str, OnlineStore] | None = None
) -> Server:
    """Everything loaded once: stores, models, routing, background threads (started by the app's lifespan)."""
    cfg = settings.serving
    budget_s = cfg.latency_budget_ms / 1000
    metrics = ServingMetrics(job_metrics_dir=job_metrics_dir(settings.home))
    lookup = guarded_lookup(settings, metrics, stores)
    stream = build_stream_lookup(lookup.stores, metrics)  # streaming namespaces share their entity's guard
    shadow = ShadowScorer(
        metrics, cfg.shadow_queue, settings.home / "release" / "shadow", bins=settings.release.shadow_bins
    )
    watcher: ReleaseWatcher | None = None
    model_dir = model_dir_from_environment(model_dir)
    # in a SageMaker container (model_dir) the endpoint's data capture is the feedback log
    feedback = (
        FeedbackLog(Lake.from_settings(settings), metrics, cfg.feedback_queue, flush_s=cfg.feedback_flush_s)
        if cfg.feedback_log and model_dir is None
        else None
    )
    fallback: models.LoadedModel | None
    loaded: dict[str, models.LoadedModel] = {}

    def load(version: str, role: str) -> models.LoadedModel:
        return models.load_version(settings, version, role)

    seen = None
    # where answers are captured (data capture in a container, the local feedback log), randomised
    # answers carry their features: the capture is then all off-policy evaluation needs
    captured = model_dir is not None or feedback is not None
    explorer = Explorer.from_config(settings.exploration, settings.release.bucket_salt, captured)
    if model_dir is not None:
        check_gated(model_dir)
        routing = Routing(models.load_from_dir(model_dir, threads=cfg.predict_threads))
        fallback = models.load_fallback_from_dir(model_dir, cfg.predict_threads)
    else:
        seen = signature(state_path(settings.home))  # before reading: a concurrent change is not missed
        try:
            routing = build_routing(_initial_state(settings), loaded, load, settings.release.bucket_salt)
        except ModelError as err:
            log.warning("serving without a model (the fallback chain answers): %s", err)
            routing = Routing(None)
        try:
            fallback = models.load_fallback(settings)
        except ModelError as err:
            log.warning("no fallback model: %s", err)
            fallback = None
    snapshot = for_fallback_levels(cfg.snapshot_items, fallback.feature_names if fallback else [])
    ranker = Ranker(
        lookup, routing, fallback, metrics, cfg.score_sample, shadow, budget_s, feedback, explorer, stream, snapshot
    )
    if model_dir is None:  # a container serves its folder; a local server follows the release state
        watcher = ReleaseWatcher(
            state_path(settings.home),
            ranker,
            loaded,
            load,
            settings.release.bucket_salt,
            cfg.release_recheck_ms / 1000,
            seen=seen,
        )
    summary = AnswerSummary(metrics, lambda: routed_versions(ranker.routing), cfg.answer_log_interval_s)
    starts: list[Callable[[], None]] = [shadow.start, summary.start] + ([watcher.start] if watcher else [])
    stops: list[Callable[[], None]] = ([watcher.stop] if watcher else []) + [summary.stop, shadow.stop, lookup.close]
    if feedback is not None:
        starts, stops = [*starts, feedback.start], [feedback.stop, *stops]
    if cfg.snapshot_seed and snapshot is not None:

        def seed_snapshot() -> None:
            start_seeding(snapshot, Lake.from_settings(settings), settings)

        starts.append(seed_snapshot)
    app = create_app(ranker, Limits(cfg.max_candidates, cfg.max_body_bytes), starts, stops)
    return Server(ranker, app, watcher, shadow)


def routed_versions(routing: Routing) -> dict[str, str | None]:
    """Variant -> the model version it runs (what the answer summary reports)."""
    described = routing.describe()
    return {role: described[role] for role in ("champion", "challenger")}


def build_ranker(settings: Settings, model_dir: Path | None = None, alias: str = "champion") -> Ranker:
    """The ranking core alone (no HTTP, no background threads), e.g. for in-process use."""
    del alias  # the release state / champion alias decides; kept for callers of the first API
    return build_server(settings, model_dir).ranker


def app_from_environment() -> Starlette:
    """uvicorn's app factory in each worker process (``workers > 1``)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    return build_server(settings).app


def _prepare_multiprocess(settings: Settings, port: int) -> None:
    """A clean directory for prometheus-client's per-process files, set before workers start. Only
    files prometheus-client writes are removed: ``PROMETHEUS_MULTIPROC_DIR`` may name a directory that
    holds anything else. Every worker shares one counters instance (see :mod:`rankops.monitoring.metrics`)."""
    folder = Path(os.environ.get(MULTIPROC_ENV) or settings.home / "run" / f"prometheus-{port}")
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if PROMETHEUS_FILE.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    os.environ[INSTANCE_ENV] = new_instance()


def run(
    settings: Settings,
    host: str,
    port: int,
    model_dir: Path | None = None,
    workers: int | None = None,
    stores: dict[str, OnlineStore] | None = None,
) -> None:
    import uvicorn

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    workers = workers or settings.serving.workers
    model_dir = model_dir_from_environment(model_dir)
    if model_dir is not None:
        check_gated(model_dir)  # before any worker starts: a refused model is one clear error
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if workers == 1:
        server = build_server(settings, model_dir, stores)
        routing = server.ranker.routing.describe()
        print(f"rankops serving {routing} on http://{host}:{port}", flush=True)
        uvicorn.run(server.app, **options)  # type: ignore[arg-type]
        return
    if stores is not None:
        raise ModelError("injected stores serve one worker only; set workers=1")
    _prepare_multiprocess(settings, port)
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    if model_dir is not None:
        os.environ["SM_MODEL_DIR"] = str(model_dir)
    print(f"rankops serving with {workers} workers on http://{host}:{port}", flush=True)
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)  # type: ignore[arg-type]
