"""Streaming features: sustained event rate and freshness, event time -> value readable in Redis.

    python -m benchmarks.features_streaming                   # 20,000 events/s for 120 s on local[2]
    python -m benchmarks.features_streaming --rate 5000 --seconds 60

A generator thread writes ``--rate`` events per second into the stream source (one Parquet
file a second, as ``rankops generate --stream``); the real job (``streaming.run``: guard,
one aggregation per window, ``write_live`` into a private redis-server on a free port) runs
beside it. Every file carries one *probe* event for an item of its own, at a random time within
its second; a poller reads the probe's window key from Redis until it appears: freshness is
that moment minus the probe's event time. Probes of the first ``--warmup`` seconds (JVM and
first micro-batch) are left out; a probe still unseen at the end counts with its age then (a
lower bound), so the percentiles never hide a job that fell behind. ``events_per_s`` is what the
job accepted divided by the run time; ``backlog_events`` what it had not yet taken when the generator stopped (about one
trigger's worth when it keeps up).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks import machine
from benchmarks.features_online import start_redis
from rankops import stream_events
from rankops.config import load_settings
from rankops.features import streaming
from rankops.features.online.factory import open_stores
from rankops.features.stream_guard import Guard
from rankops.lake import Lake
from rankops.spark_session import get_spark

TARGET_RATE, TARGET_P95_S, TARGET_P99_S = 20_000, 30.0, 60.0  # issue 17, on local[2]


def generate(lake: Lake, cfg: streaming.StreamConfig, rate: int, seconds: float, probes: dict[str, int]) -> int:
    spec = stream_events.StreamSpec(items=20_000, sellers=2_000)
    rng = np.random.default_rng(11)
    written, seq, start = 0, 0, time.time()
    while time.time() - start < seconds:
        tick = time.time()
        now_ms = int(tick * 1000)
        table = stream_events.events(spec, rng, rate - 1, now_ms - 1000, now_ms)
        probe_ts = int(rng.integers(now_ms - 1000, now_ms))
        probe = stream_events.events(spec, rng, 1, probe_ts, probe_ts + 1)
        probe = probe.set_column(2, "item_id", pa.array([f"probe-{seq}"]))
        stream_events.publish(lake, cfg.source, pa.concat_tables([table, probe]), stream_events.file_name(now_ms, seq))
        probes[f"probe-{seq}"] = probe_ts
        written += rate
        seq += 1
        time.sleep(max(0.0, 1.0 - (time.time() - tick)))
    return written


def poll(store: Any, ns: str, probes: dict[str, int], seen: dict[str, float], stop: threading.Event) -> None:
    while not stop.is_set():
        pending = [k for k in list(probes) if k not in seen]
        if pending:
            keys = [streaming.store_key(k, streaming.serving_window_end(probes[k] / 1000)) for k in pending]
            found_at = time.time()
            for key, value in zip(pending, store.read(ns, keys), strict=True):
                if value is not None:
                    seen[key] = found_at - probes[key] / 1000
        time.sleep(0.2)


def run(rate: int, seconds: float, warmup: float, trigger_s: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="rankops-bench-stream-"))
    redis_proc, port = start_redis(folder)
    try:
        environ = {
            "RANKOPS_SPARK__MASTER": "local[2]",
            "RANKOPS_ONLINE_STORE__DEFAULT": "redis",
            "RANKOPS_ONLINE_STORE__REDIS__URL": f"redis://127.0.0.1:{port}/0",
        }
        settings = load_settings(env="local", home=folder / "home", environ=environ)
        lake = Lake.from_settings(settings)
        cfg = streaming.StreamConfig.from_lake(lake, trigger_s=trigger_s)
        lake.write_bytes(f"{cfg.source}/_keep", b"")
        spark = get_spark(settings, "bench-streaming")
        entities = sorted({e for e, _, _ in streaming.groups()})
        by_entity = open_stores(settings, entities, for_writes=True)
        stores = {streaming.namespace(e, w): by_entity[e] for e, w, _ in streaming.groups()}
        ns = streaming.namespace("item", min(streaming.windows()))
        probes: dict[str, int] = {}
        seen: dict[str, float] = {}
        stop = threading.Event()
        job = threading.Thread(target=streaming.run, args=(spark, lake, settings, cfg, stores, warmup + seconds + 30))
        job.start()
        time.sleep(warmup)  # the JVM and the first micro-batches: not part of the measurement
        poller = threading.Thread(target=poll, args=(by_entity["item"], ns, probes, seen, stop), daemon=True)
        poller.start()
        started = time.time()
        accepted_before = _accepted(lake, cfg)
        offered = generate(lake, cfg, rate, seconds, probes)
        elapsed = time.time() - started
        accepted = _accepted(lake, cfg) - accepted_before  # what the job took while it was offered
        deadline = time.time() + 30  # let the last probes land
        while len(seen) < len(probes) and time.time() < deadline:
            time.sleep(0.5)
        stop.set()
        job.join()
        # a probe never seen counts with its age at the end (a lower bound): leaving it out would
        # report the fast probes only
        ended = time.time()
        unseen = [ended - probes[k] / 1000 for k in probes if k not in seen]
        fresh = list(seen.values()) + unseen
        p95 = round(float(np.percentile(fresh, 95)), 2) if fresh else None
        p99 = round(float(np.percentile(fresh, 99)), 2) if fresh else None
        achieved = round(accepted / elapsed)
        return {
            "benchmark": "features_streaming",
            "master": "local[2]",
            "offered_events_per_s": rate,
            "events_per_s": achieved,
            "generated_events_per_s": round(offered / elapsed),  # what the generator managed to offer
            "events_offered": offered,
            "events_accepted": accepted,
            "backlog_events": offered - accepted,
            "freshness_p50_s": round(float(np.percentile(fresh, 50)), 2) if fresh else None,
            "freshness_p95_s": p95,
            "freshness_p99_s": p99,
            "targets": {"events_per_s": TARGET_RATE, "freshness_p95_s": TARGET_P95_S, "freshness_p99_s": TARGET_P99_S},
            "targets_met": bool(
                achieved >= TARGET_RATE
                and p95 is not None
                and p99 is not None
                and p95 <= TARGET_P95_S
                and p99 <= TARGET_P99_S
                and not unseen
            ),
            "probes": len(probes),
            "probes_seen": len(seen),
            "seconds": seconds,
            "trigger_s": trigger_s,
            **machine.describe(),  # cpus, cpu model and clock, load average
        }
    finally:
        redis_proc.terminate()
        redis_proc.wait()


def _accepted(lake: Lake, cfg: streaming.StreamConfig) -> int:
    record = Guard(lake, cfg.folder, 0).latest()
    return record.total_accepted if record else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=20_000, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=120, help="how long to offer them")
    parser.add_argument("--warmup", type=float, default=30, help="seconds of job start-up left out")
    parser.add_argument("--trigger", type=float, default=5.0, help="micro-batch interval, seconds")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rate, args.seconds, args.warmup, args.trigger), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
