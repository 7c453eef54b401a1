"""Near-real-time features: Spark Structured Streaming from a file source in the lake into
the online store, exactly once. Design and figures: ``docs/streaming.md``.

Two stages in one Spark session:

1. the *guard* (:mod:`rankops.features.stream_guard`) splits each micro-batch of raw events
   into quarantined, late and accepted events under its batch id;
2. one *aggregation* per declared streaming window reads the accepted events pre-summed per slide
   bucket (:mod:`rankops.features.stream_buckets`), sums
   impressions, clicks and contacts per entity key in event-time windows sliding by
   ``registry.STREAM_SLIDE`` (update mode, watermark), and writes every updated window to the
   online store under the key ``<id>@<window end, epoch s>``.

A window's stored value is its running total, a pure function of the events in it: writing it
again writes the same bytes, so a micro-batch replayed after a crash changes nothing (exactly
once per key and window), and when a window has closed its value equals a batch recomputation
over the same events (:func:`recompute`, the parity tests), bit for bit: counts are integers
and the feature arithmetic is one NumPy function shared by both paths.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rankops.errors import LakeError
from rankops.features import registry, stream_buckets
from rankops.features.online.packing import pack_rows
from rankops.features.stream_guard import Guard
from rankops.features.stream_runs import kinesis_stream
from rankops.features.stream_sources import raw_stream, source_schema
from rankops.lake import Lake
from rankops.spark_session import spark_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from rankops.config import Settings
    from rankops.features.online.base import OnlineStore

    class LiveStore(OnlineStore, Protocol):
        """A store the streaming job writes into: the embedded, Redis and DynamoDB stores."""

        def write_live(
            self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
        ) -> None: ...


MEASURES = ("impressions", "clicks", "contacts")
REPORT_EVERY_S = 60.0
Report = Callable[[int], None]  # given the newest window end written (epoch s)
ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


@dataclass(frozen=True)
class StreamConfig:
    """How the job runs. ``delay`` is the watermark delay: how late an event may arrive and
    still count (later ones are counted as late and kept in the lake, not aggregated)."""

    source: str  # folder of raw event files (lake URI)
    folder: str  # the job's own lake folder: checkpoints, accepted/late/quarantined events
    delay: timedelta = timedelta(minutes=2)
    trigger_s: float = 5.0
    max_files_per_trigger: int | None = None
    partitions: int = 2  # state partitions: fixed by the first run's checkpoint; each costs per batch

    @classmethod
    def from_lake(cls, lake: Lake, **overrides: Any) -> StreamConfig:
        return cls(lake.uri("raw", "stream", "events"), lake.uri("raw", "stream", "job"), **overrides)


def stream_features(entity: str | None = None) -> list[registry.Feature]:
    """Declared streaming features (of ``entity``, or all), in declaration order."""
    return [f for f in registry.FEATURES if f.kind == "stream" and entity in (None, f.entity)]


def windows() -> list[timedelta]:
    """Distinct streaming windows: one aggregation each."""
    return sorted({f.window for f in stream_features() if f.window is not None})


def _seconds(window: timedelta) -> int:
    return int(window.total_seconds())


def namespace(entity: str, window: timedelta) -> str:
    """The online-store entity name holding ``entity``'s features of one window."""
    return f"{entity}_stream_{_seconds(window)}s"


def groups() -> list[tuple[str, timedelta, list[registry.Feature]]]:
    """(entity, window, features) per store namespace, in declaration order."""
    out: dict[tuple[str, timedelta], list[registry.Feature]] = {}
    for f in stream_features():
        assert f.window is not None
        out.setdefault((f.entity, f.window), []).append(f)
    return [(e, w, fs) for (e, w), fs in out.items()]


def ttl_seconds(features: list[registry.Feature]) -> int:
    """How long a stored window value lives: its window plus the freshness SLA (the longest of
    ``features``, one namespace). A value is written from the window's start on (each write
    renews it) and read until the window ends; the SLA covers a job running that far behind.
    Past that nobody reads it, so the store need not keep it (the batch TTL is days)."""
    return max(_seconds(f.window) + _seconds(f.freshness_sla) for f in features if f.window and f.freshness_sla)


def version() -> str:
    """Store version of the streaming namespaces: changes when what a value means changes."""
    return "s" + registry.feature_set_version({"stream_slide_s": _seconds(registry.STREAM_SLIDE)})[1:]


def store_key(key: str, window_end_s: int) -> str:
    return f"{key}@{window_end_s}"


def serving_window_end(now_s: float) -> int:
    """The window a reader wants at ``now_s``: the one ending at the next slide boundary."""
    slide = _seconds(registry.STREAM_SLIDE)
    return (int(now_s) // slide + 1) * slide


# -- the computation, shared by the stream and the batch recomputation -------------------------
def window_counts(events: DataFrame, window: timedelta) -> DataFrame:
    """Per (entity, key, sliding window): integer counts of the measures. ``events`` may be a
    stream (with a watermark on ``ts``) or a static frame."""
    from pyspark.sql import functions as F

    entities = sorted({f.entity for f in stream_features() if f.window == window})
    keyed = events.select(
        "ts",
        F.col("clicked").cast("long").alias("clicked"),
        F.col("contacted").cast("long").alias("contacted"),
        F.explode(
            F.array(
                *[F.struct(F.lit(e).alias("entity"), F.col(registry.ENTITIES[e].key).alias("key")) for e in entities]
            )
        ).alias("k"),
    )
    slide = f"{_seconds(registry.STREAM_SLIDE)} seconds"
    return keyed.groupBy(F.window("ts", f"{_seconds(window)} seconds", slide), "k.entity", "k.key").agg(
        F.count(F.lit(1)).alias("impressions"),
        F.sum("clicked").alias("clicks"),
        F.sum("contacted").alias("contacts"),
    )


def feature_matrix(features: list[registry.Feature], counts: dict[str, np.ndarray], settings: Settings) -> np.ndarray:
    """The declared features from window counts, one column per feature (float64)."""
    columns = []
    for f in features:
        spec = f.compute
        if isinstance(spec, registry.WindowSum):
            columns.append(counts[spec.measure].astype(np.float64))
        elif isinstance(spec, registry.SmoothedRatio):
            k = float(getattr(settings.features, spec.strength_setting))
            num, den = counts[spec.numerator].astype(np.float64), counts[spec.denominator].astype(np.float64)
            columns.append((num + f.default * k) / (den + k))
        else:
            raise ValueError(f"streaming feature {f.name!r}: {type(spec).__name__} is not a windowed count")
    return np.column_stack(columns) if columns else np.zeros((0, 0))


def packed_rows(table: pa.Table, window: timedelta, settings: Settings) -> dict[str, tuple[list[str], list[bytes]]]:
    """Window counts (``entity, key, end_s`` and the measures) -> per namespace, store keys and
    packed values."""
    out: dict[str, tuple[list[str], list[bytes]]] = {}
    for entity, w, feats in groups():
        if w != window:
            continue
        rows = table.filter(pc.equal(table["entity"], entity))
        if not rows.num_rows:
            continue
        counts = {m: rows[m].to_numpy() for m in MEASURES}
        keys = [store_key(k, e) for k, e in zip(rows["key"].to_pylist(), rows["end_s"].to_pylist(), strict=True)]
        out[namespace(entity, w)] = (keys, pack_rows(version(), feature_matrix(feats, counts, settings)))
    return out


def _flat(counts: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return counts.select(
        "entity", "key", (F.unix_seconds(F.col("window.end"))).alias("end_s"), *[F.col(m) for m in MEASURES]
    )


# -- the running job ----------------------------------------------------------------------------
def ensure_live(store: LiveStore, ns: str, features: list[registry.Feature]) -> None:
    """Make the streaming version live for ``ns`` (once; later batches write into it)."""
    active = store.active_version(ns)
    names = [f.name for f in features]
    if active is None or active.version != version() or active.columns != names:
        store.write_batch(ns, version(), [], [])
        store.activate(ns, version(), names, [])


@dataclass
class Progress:
    """What the job did so far (the CLI and the benchmark report it)."""

    batches: dict[str, int] = field(default_factory=dict)  # query -> micro-batches written
    values_written: int = 0
    newest_end_s: int = 0  # the latest window end written (freshness: rankops.features.stream_runs)
    lock: threading.Lock = field(default_factory=threading.Lock)


def collect(frame: DataFrame, attempts: int = 3) -> pa.Table:
    """``frame.toArrow()``, retried: on a loaded machine the JVM-to-Python result socket can time
    out; a micro-batch's frame can be computed again (Spark's foreachBatch contract)."""
    from py4j.protocol import Py4JJavaError

    for attempt in range(attempts):
        try:
            return frame.toArrow()
        except Py4JJavaError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def window_writer(window: timedelta, stores: dict[str, LiveStore], settings: Settings, progress: Progress) -> Any:
    ttls = {namespace(e, w): ttl_seconds(fs) for e, w, fs in groups()}

    def write(batch: DataFrame, batch_id: int) -> None:
        try:
            table = collect(_flat(batch))
            for ns, (keys, payloads) in packed_rows(table, window, settings).items():
                stores[ns].write_live(ns, version(), keys, payloads, ttls[ns])
                with progress.lock:
                    progress.values_written += len(keys)
                    progress.newest_end_s = max(progress.newest_end_s, *(int(k.rsplit("@", 1)[1]) for k in keys))
        except Exception as err:  # a short message: Spark chokes on huge ones (regex stack overflow)
            raise RuntimeError(
                f"window {_seconds(window)}s batch {batch_id}: {type(err).__name__}: {err}"[:500]
            ) from None
        with progress.lock:
            progress.batches[f"window_{_seconds(window)}s"] = batch_id + 1

    return write


def check_source(lake: Lake, cfg: StreamConfig) -> None:
    if kinesis_stream(cfg.source) is None and not lake.exists(cfg.source):
        raise LakeError(f"stream source {cfg.source} does not exist; run `rankops generate --stream` to feed it")


def start(
    spark: SparkSession, lake: Lake, settings: Settings, cfg: StreamConfig, stores: dict[str, LiveStore], once: bool
) -> tuple[list[StreamingQuery], Progress]:
    """Start the guard and the aggregations. ``once``: process what is there and stop
    (``availableNow``; the guard finishes before the aggregations start)."""
    check_source(lake, cfg)
    for entity, window, feats in groups():
        ensure_live(stores[namespace(entity, window)], namespace(entity, window), feats)
    guard = Guard(lake, cfg.folder, int(cfg.delay.total_seconds() * 1000))
    progress = Progress()
    trigger: dict[str, Any] = {"availableNow": True} if once else {"processingTime": f"{cfg.trigger_s} seconds"}
    spark_schema = source_schema()

    def guard_batch(batch: DataFrame, batch_id: int) -> None:
        guard.split(collect(batch), batch_id)
        with progress.lock:
            progress.batches["guard"] = batch_id + 1

    def reader(path: str, max_files: int | None = None) -> Any:
        return raw_stream(spark, path, spark_schema, max_files)

    queries = [
        reader(cfg.source, cfg.max_files_per_trigger)
        .writeStream.foreachBatch(guard_batch)
        .option("checkpointLocation", spark_uri(f"{cfg.folder}/checkpoints/guard"))
        .trigger(**trigger)
        .queryName("stream_guard")
        .start()
    ]
    if once:
        queries[0].awaitTermination()
    lake.write_bytes(f"{guard.buckets_folder()}/_keep", b"")  # the aggregations' source must exist
    delay = f"{int(stream_buckets.aggregation_delay(cfg.delay).total_seconds())} seconds"
    conf = {
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB,
        "spark.sql.shuffle.partitions": str(cfg.partitions),
        # each batch uploads the state's changes, not a snapshot of its files
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    }
    saved = {k: spark.conf.get(k, None) for k in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)  # read when a query starts (and then kept in its checkpoint)
    for window in windows():
        # Every bucket file there is, every batch: the file source orders a limited pick by
        # modification time, which could put a newer file before an older one (and make its
        # events late for Spark); the guard publishes in batch order, so a full listing cannot.
        buckets = spark.readStream.schema(stream_buckets.spark_schema()).parquet(spark_uri(guard.buckets_folder()))
        entities = sorted({f.entity for f in stream_features() if f.window == window})
        queries.append(
            stream_buckets.window_sums(buckets.withWatermark("ts", delay), window, entities)
            .writeStream.outputMode("update")
            .foreachBatch(window_writer(window, stores, settings, progress))
            .option("checkpointLocation", spark_uri(f"{cfg.folder}/checkpoints/window_{_seconds(window)}s"))
            .trigger(**trigger)
            .queryName(f"stream_window_{_seconds(window)}s")
            .start()
        )
    for key, old in saved.items():
        if old is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, old)
    return queries, progress


def run(
    spark: SparkSession,
    lake: Lake,
    settings: Settings,
    cfg: StreamConfig,
    stores: dict[str, LiveStore],
    seconds: float | None = None,
    report: Report | None = None,
) -> Progress:
    """Run for ``seconds`` of wall time (then stop cleanly), or with ``None`` process what is
    in the source and stop. ``report``: called each minute with the newest window end written."""
    queries, progress = start(spark, lake, settings, cfg, stores, once=seconds is None)
    try:
        if seconds is None:
            for q in queries:
                q.awaitTermination()
        else:
            deadline, reported = time.monotonic() + seconds, time.monotonic()
            while time.monotonic() < deadline and all(q.isActive for q in queries):
                time.sleep(0.5)
                if report is not None and time.monotonic() - reported >= REPORT_EVERY_S:
                    reported = time.monotonic()
                    report(progress.newest_end_s)
            for q in queries:
                if q.exception() is not None:
                    raise q.exception()  # type: ignore[misc]
    finally:
        for q in queries:
            q.stop()
    return progress


def run_job(
    settings: Settings, lake: Lake, cfg: StreamConfig, seconds: float | None, report: Report | None = None
) -> dict[str, Any]:
    """The job as the entrypoint and the CLI run it: stores from config, then a JSON-ready
    report of what was written and what the guard set aside."""
    from rankops.features.online.factory import open_stores
    from rankops.spark_session import get_spark

    check_source(lake, cfg)
    names = [namespace(e, w) for e, w, _ in groups()]
    by_entity = open_stores(settings, sorted({e for e, _, _ in groups()}), for_writes=True)
    stores: dict[str, LiveStore] = {namespace(e, w): by_entity[e] for e, w, _ in groups()}  # type: ignore[misc]
    try:
        progress = run(get_spark(settings, "rankops-stream-features"), lake, settings, cfg, stores, seconds, report)
    finally:
        for store in {id(s): s for s in stores.values()}.values():
            store.close()
    guard = Guard(lake, cfg.folder, 0).latest()
    return {
        "batches": dict(progress.batches),
        "values_written": progress.values_written,
        "events_accepted": guard.total_accepted if guard else 0,
        "events_late": guard.total_late if guard else 0,
        "events_quarantined": guard.total_quarantined if guard else 0,
        "quarantine_reasons": guard.reasons if guard else {},
        "namespaces": names,
        "job_folder": cfg.folder,
    }


# -- the batch recomputation --------------------------------------------------------------------
def recompute(spark: SparkSession, events: pa.Table, settings: Settings) -> dict[str, dict[str, bytes]]:
    """Every window's packed value from a static batch over ``events`` (the parity reference):
    ``{namespace: {store key: packed value}}``."""
    out: dict[str, dict[str, bytes]] = {}
    frame = spark.createDataFrame(events.to_pandas()) if events.num_rows else None
    for window in windows():
        if frame is None:
            continue
        table = _flat(window_counts(frame, window)).toArrow()
        for ns, (keys, payloads) in packed_rows(table, window, settings).items():
            out.setdefault(ns, {}).update(zip(keys, payloads, strict=True))
    return out
