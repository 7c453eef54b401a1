"""Every Prometheus metric of the serving path, defined once.

The metrics are declared as data (:data:`SPECS`) so the alert rules and the
Grafana dashboard under ``assets/`` can be checked against them by a test (no
drift between what the server exports and what operators query).

A :class:`ServingMetrics` owns its own registry instead of the process-global
one, so two servers (or two tests) in one process never share counters. With
``PROMETHEUS_MULTIPROC_DIR`` set (several uvicorn workers), prometheus-client
writes every value to per-process files and :meth:`ServingMetrics.exposition`
aggregates all workers' files; the variable must be set before the worker
process imports prometheus-client, which :mod:`rankops.serving.server` does.

Counters only ever grow while a server runs, so a release check that must judge one
step on its own traffic subtracts a snapshot taken when the step began. A server
restart resets them: :attr:`ServingMetrics.instance` identifies the counters' life
(one per server, shared by its workers through :data:`INSTANCE_ENV`) and when it began.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
INSTANCE_ENV = "RANKOPS_METRICS_INSTANCE"  # "<started epoch seconds>:<id>", set once for all workers

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1)
FETCH_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
SCORE_BUCKETS = (-4, -3, -2, -1.5, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 1.5, 2, 3, 4)
CORRELATION_BUCKETS = (-0.5, 0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1)

Kind = Literal["counter", "histogram", "gauge"]
Source = Literal["server", "jobs"]  # exported by the inference server, or published by a batch job


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    source: Source = "server"


SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "rankops_request_seconds",
        "histogram",
        "Handling time of POST /invocations (body read, parse, features, scoring, encoding). variant is the model "
        "the request was routed to (champion or challenger; none if rejected); outcome is ok, degraded (a lower "
        "level of the fallback chain answered) or rejected (4xx).",
        ("variant", "outcome"),
        LATENCY_BUCKETS,
    ),
    MetricSpec(
        "rankops_feature_fetch_seconds",
        "histogram",
        "One batched online-store read (all candidates of a request).",
        ("store",),
        FETCH_BUCKETS,
    ),
    MetricSpec(
        "rankops_store_errors_total",
        "counter",
        "Store reads that failed (error), were slower than serving.store_timeout_ms (slow) or were skipped "
        "because the store's circuit was open (circuit_open).",
        ("store", "reason"),
    ),
    MetricSpec("rankops_candidates_total", "counter", "Candidates ranked."),
    MetricSpec(
        "rankops_candidates_missing_features_total",
        "counter",
        "Candidates absent from the online store (scored with the registry's defaults).",
    ),
    MetricSpec(
        "rankops_stream_feature_defaults_total",
        "counter",
        "Candidates served a streaming feature's declared default, by feature and reason (missing_or_stale: no "
        "value for the current window; store_error: the store failed or timed out; budget: the latency budget "
        "left could not cover the read; no_store, undecodable, error).",
        ("feature", "reason"),
    ),
    MetricSpec(
        "rankops_fallback_total",
        "counter",
        "Requests answered below the model they were routed to (variant), by the level that answered "
        "(fallback model, rule baseline, input_order as the last resort).",
        ("variant", "level"),
    ),
    MetricSpec(
        "rankops_score",
        "histogram",
        "Ranking scores, serving.score_sample evenly spaced ranks per request, by the level that answered.",
        ("level",),
        SCORE_BUCKETS,
    ),
    MetricSpec(
        "rankops_shadow_total",
        "counter",
        "Shadow scorings of the challenger off the request path, by outcome (scored, dropped, failed).",
        ("outcome",),
    ),
    MetricSpec(
        "rankops_shadow_rank_correlation",
        "histogram",
        "Spearman correlation between the challenger's and the champion's scores of one request.",
        (),
        CORRELATION_BUCKETS,
    ),
    MetricSpec(
        "rankops_release_reloads_total",
        "counter",
        "Release-state reloads by the server (ok: the new state is live; error: kept the previous one).",
        ("outcome",),
    ),
    MetricSpec(
        "rankops_model_version",
        "gauge",
        "Registered model version loaded per role (champion, challenger, previous, fallback).",
        ("role",),
    ),
    MetricSpec("rankops_canary_share", "gauge", "Share of users routed to the challenger (0 outside a canary)."),
    MetricSpec(
        "rankops_feedback_records_total",
        "counter",
        "Answers handed to the feedback log off the request path: logged, dropped (its bounded queue was full; "
        "the request was not slowed) or failed (the writer could not store them).",
        ("outcome",),
    ),
    # Published by the batch jobs (drift, online metrics, pipeline), hourly; gauges hold the last window's value.
    MetricSpec(
        "rankops_online_ctr",
        "gauge",
        "Click-through rate of the top k positions in the last hour, from the feedback log joined with outcomes.",
        ("variant", "model_version", "k"),
        source="jobs",
    ),
    MetricSpec(
        "rankops_online_contact_rate",
        "gauge",
        "Share of answers in the last hour followed by a contact.",
        ("variant", "model_version"),
        source="jobs",
    ),
    MetricSpec(
        "rankops_revenue_proxy",
        "gauge",
        "Revenue proxy of the last hour (sum of the prices of purchased items; RevenueProxy in CloudWatch).",
        ("variant", "model_version"),
        source="jobs",
    ),
    MetricSpec(
        "rankops_online_ndcg",
        "gauge",
        "NDCG@k of the last hour's answers, graded by observed clicks, contacts and purchases.",
        ("variant", "model_version", "k"),
        source="jobs",
    ),
    MetricSpec(
        "rankops_catalogue_coverage",
        "gauge",
        "Share of the catalogue shown in a top 10 in the last hour.",
        ("variant", "model_version"),
        source="jobs",
    ),
    MetricSpec(
        "rankops_feature_drift_psi",
        "gauge",
        "Population stability index of one model feature, served traffic against the training reference, over "
        "the last hour or day (FeatureDriftPSI in CloudWatch publishes the maximum over features).",
        ("feature", "window"),
        source="jobs",
    ),
    MetricSpec(
        "rankops_score_kl",
        "gauge",
        "KL divergence of served scores from the training reference's scores, over the last hour or day.",
        ("window",),
        source="jobs",
    ),
    MetricSpec(
        "rankops_features_materialized_timestamp_seconds",
        "gauge",
        "When the online features of an entity were last materialized (unix time).",
        ("entity",),
        source="jobs",
    ),
    MetricSpec(
        "rankops_pipeline_last_run_ok",
        "gauge",
        "1 if the last training pipeline run succeeded, 0 if it failed, timed out or was aborted.",
        source="jobs",
    ),
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def new_instance() -> str:
    """A fresh counters-instance string: when the counters started, and a random id."""
    return f"{time.time():.6f}:{uuid.uuid4().hex[:16]}"


def parse_instance(value: str) -> dict[str, str | float]:
    started = value.partition(":")[0]
    try:
        return {"id": value, "started": float(started)}
    except ValueError:
        return {"id": value, "started": 0.0}


def exposed_names(source: Source | None = None) -> set[str]:
    """Every sample name exported (by the server, the jobs, or both): what PromQL can reference."""
    names: set[str] = set()
    for spec in SPECS:
        if source is not None and spec.source != source:
            continue
        if spec.kind == "histogram":
            names |= {f"{spec.name}_bucket", f"{spec.name}_count", f"{spec.name}_created"}
            if min(spec.buckets) >= 0:  # prometheus-client exports no _sum when observations may be negative
                names.add(f"{spec.name}_sum")
        elif spec.kind == "counter":
            base = spec.name.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
        else:
            names.add(spec.name)
    return names


def _build(spec: MetricSpec, registry: CollectorRegistry) -> Any:
    if spec.kind == "histogram":
        return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    return Gauge(spec.name, spec.help, spec.labels, registry=registry, multiprocess_mode="livemostrecent")


class ServingMetrics:
    """The metric objects of one server, named after :data:`SPECS` (``rankops_`` and ``_total`` dropped)."""

    def __init__(self, registry: CollectorRegistry | None = None, job_metrics_dir: Path | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        # batch jobs (drift, online metrics) leave their gauges here as *.prom text files; /metrics
        # appends them, so the Prometheus that scrapes the server sees them without a push gateway
        self.job_metrics_dir = job_metrics_dir
        shared = os.environ.get(INSTANCE_ENV) if multiprocess_dir() else None
        # which life of the counters this is (they restart from zero with the server)
        self.instance: dict[str, str | float] = parse_instance(shared or new_instance())
        built = {spec.name: _build(spec, self.registry) for spec in SPECS if spec.source == "server"}
        self.request_seconds: Histogram = built["rankops_request_seconds"]
        self.feature_fetch_seconds: Histogram = built["rankops_feature_fetch_seconds"]
        self.store_errors: Counter = built["rankops_store_errors_total"]
        self.candidates: Counter = built["rankops_candidates_total"]
        self.candidates_missing: Counter = built["rankops_candidates_missing_features_total"]
        self.fallback: Counter = built["rankops_fallback_total"]
        self.stream_defaults: Counter = built["rankops_stream_feature_defaults_total"]
        self.score: Histogram = built["rankops_score"]
        self.shadow: Counter = built["rankops_shadow_total"]
        self.shadow_rank_correlation: Histogram = built["rankops_shadow_rank_correlation"]
        self.release_reloads: Counter = built["rankops_release_reloads_total"]
        self.model_version: Gauge = built["rankops_model_version"]
        self.canary_share: Gauge = built["rankops_canary_share"]
        self.feedback: Counter = built["rankops_feedback_records_total"]

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type; all workers' values in multiprocess mode."""
        if multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry) + self.job_metrics(), CONTENT_TYPE_LATEST
        return generate_latest(self.registry) + self.job_metrics(), CONTENT_TYPE_LATEST

    def job_metrics(self) -> bytes:
        """The batch jobs' latest text files (each replaced atomically by :func:`write_job_metrics`)."""
        if self.job_metrics_dir is None or not self.job_metrics_dir.is_dir():
            return b""
        return b"".join(path.read_bytes() for path in sorted(self.job_metrics_dir.glob("*.prom")))


def job_metrics_dir(home: Path) -> Path:
    """Where the local batch jobs leave their gauges for the server (``RANKOPS_HOME/metrics``)."""
    return home / "metrics"


def write_job_metrics(folder: Path, job: str, text: bytes) -> Path:
    """Publish one job's gauges for the server's ``/metrics`` (write, then rename: never half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{job}.prom"
    tmp = folder / f".{job}.prom.{uuid.uuid4().hex[:8]}"
    tmp.write_bytes(text)
    os.replace(tmp, target)
    return target
