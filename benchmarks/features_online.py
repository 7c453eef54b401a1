"""Online stores: materialization rate and read latency, against peers in the same run.

    python -m benchmarks.features_online                       # 100k items x 6 features, 20 rows of history each
    python -m benchmarks.features_online --compare             # + Feast 0.67 (see below)

Measured on a private redis-server (started on a free port, stopped at the end)
and the embedded SQLite store:

* materialization: rows/s of the real ``materialize`` (``rankops features
  materialize``), end to end, from an offline store *with history*: ``--history``
  published rows per key (runs over ``--days`` day partitions, committed through the
  lake's manifests) and, as every feature run publishes it, each entity's *latest
  snapshot* (one row per key, written by the job's own Spark code,
  ``offline.write_latest``, before timing starts), so each run reads the snapshot,
  checks, packs, writes and activates; the time of picking the latest rows alone
  (``offline.latest_values``, from the snapshot) is reported beside it, with the time of
  the history scan it replaces (``latest_values_history_scan_item_s``, the fallback
  when no current snapshot exists; the two tables are asserted equal);
  ``materialize_rows_per_s`` is items over the item's seconds (read, check, inline its
  seller's and category's values, pack, write, activate; reading the joined entities counts
  under their own entries), ``materialize_all_entities_rows_per_s`` every row over every
  entity's seconds;
* reads: p50/p99 of one lookup of ``--batch`` random items x all their features
  (``FeatureLookup.fetch``, values decoded, defaults filled), and of the full
  ``fetch_items`` path (every entity: the items carry their seller's and category's values,
  so one ``HMGET`` of the version's hash; ``fetch_items_round_trips`` counts the store calls),
  timed interleaved with the bare peers; ``targets`` holds the issue's ratios;
* peers in the same run: a bare redis-py ``MGET`` of the same packed values stored one string
  key each (the issue's yardstick) and a bare ``HMGET`` of the version's hash, a naive per-key
  client (one ``GET``/``SET`` per key), and the redis-server's own ceilings for the same
  writes, one pre-encoded pipeline each with only the sending and the server's work timed:
  ``peer_server_ceiling_hset_rows_per_s`` (``HSET``s as materialization sends them) and
  ``peer_server_ceiling_set_rows_per_s`` (one ``SET … EX`` per value, the layout before); with ``--compare`` Feast's
  ``materialize`` / ``get_online_features`` on the same rows. Feast pins versions
  that clash with rankops', so it lives in its own venv (never in setup.py):

      python3 -m venv .venv-feast && .venv-feast/bin/pip install "feast[redis]==0.67.0"

  If that venv is missing the Feast figures are reported as not measured.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks import machine

REPO = Path(__file__).resolve().parent.parent
FEAST_PYTHON = REPO / ".venv-feast" / "bin" / "python"
PEER_KEYS = "peer:item:"  # the items' packed values as one string key each, for the bare MGET peer


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def timed(fn: Any, batches: list[list[str]], warmup: int = 50) -> dict[str, float]:
    for ids in batches[:warmup]:
        fn(ids)
    samples = []
    for ids in batches:
        t0 = time.perf_counter()
        fn(ids)
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


def interleaved(fns: dict[str, Any], batches: list[list[str]], warmup: int = 50) -> dict[str, dict[str, float]]:
    """Each of ``fns`` on every batch in turn (A, B, C, A, B, C, ...): peers measured under the
    same conditions, so a noisy machine moves them together and their ratio holds."""
    for ids in batches[:warmup]:
        for fn in fns.values():
            fn(ids)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for ids in batches:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(ids)
            samples[name].append(time.perf_counter() - t0)
    return {name: percentiles(values) for name, values in samples.items()}


def round_trips(lookup: Any, ids: list[str]) -> int:
    """Store calls (``read_many``) one ``fetch_items`` makes."""
    calls = 0
    stores = {id(s): s for s in lookup.stores.values()}.values()
    originals = [(s, s.read_many) for s in stores]
    for store, inner in originals:

        def counted(requests: Any, inner: Any = inner) -> Any:
            nonlocal calls
            calls += 1
            return inner(requests)

        store.read_many = counted
    try:
        lookup.fetch_items(ids)
    finally:
        for store, inner in originals:
            store.read_many = inner
    return calls


def server_ceilings(client: Any, item_ids: list[str], payloads: list[bytes]) -> dict[str, int]:
    """The redis-server's own ceilings for these writes, each one pre-encoded pipeline with the
    replies counted off the socket, only the send and the server's work timed (no reading,
    packing or encoding): what ``materialize_rows_per_s`` could reach if the client cost nothing.
    ``set``: every item's packed value ``SET … EX`` (one key each: ``PEER_KEYS``, which the bare
    ``MGET`` peer then reads); ``hset``: the same values in ``HSET``s of ``hash_fields`` values into
    one hash, as materialization writes them."""
    from rankops.features.online.redis import RedisConfig
    from rankops.features.online.redis_wire import Replies, encode_hsets, encode_sets

    fields = RedisConfig().hash_fields
    hsets, commands = encode_hsets(b"peer:item", item_ids, payloads, fields)
    wires = {
        "set": ([bytes(encode_sets(PEER_KEYS.encode(), item_ids, payloads, 3600))], len(item_ids)),
        "hset": ([b"".join(hsets)], commands),
    }
    out = {}
    for name, (wire, replies_expected) in wires.items():
        conn = client.connection_pool.get_connection()
        try:
            replies = Replies(conn)
            started = time.perf_counter()
            conn.send_packed_command(wire, check_health=False)
            replies.finish(replies_expected)
            seconds = time.perf_counter() - started
        finally:
            client.connection_pool.release(conn)
        assert not replies.errors, replies.errors[:1]
        out[name] = round(len(item_ids) / seconds)
    return out


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*args, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the benchmark's redis-server did not start") from None
            time.sleep(0.05)


HISTORY_START_MS = 1_790_812_800_000  # 2026-10-01T00:00Z


def offline_store(
    entities: int, history: int, days: int, home: Path, snapshot: bool = True
) -> tuple[Any, Any, dict[str, int]]:
    """A published offline feature store under ``home``: for every entity ``history``
    change points per key spread over ``days`` day partitions, committed with the lake's
    manifests, each entity's latest snapshot written by the feature job's own Spark code
    (``offline.write_latest``; ``snapshot=False``: none), and the version's manifest.
    -> (settings, lake, history rows per entity)."""
    from datetime import UTC, datetime

    from rankops.config import load_settings
    from rankops.features import offline, registry
    from rankops.features.offline import runs as offline_runs
    from rankops.lake import Lake

    settings = load_settings(env="local", home=home, config_file=REPO / "rankops.toml", environ={})
    lake = Lake.from_settings(settings)
    rng = np.random.default_rng(0)
    sizes = {"item": entities, "seller": max(1, entities // 25), "category": 16}
    hours = days * 24
    step = max(1, hours // history)
    rows = {}
    for entity, n in sizes.items():
        key = registry.ENTITIES[entity].key
        keys = np.repeat(np.arange(n), history)
        version = np.tile(np.arange(history), n)
        hour = version * step + keys % step  # distinct change points per key, every key in every stretch
        ts_ms = HISTORY_START_MS + hour.astype(np.int64) * 3_600_000
        order = np.lexsort((ts_ms, keys))
        keys, ts_ms = keys[order], ts_ms[order]
        cols: dict[str, Any] = {
            key: pa.array(np.char.add(f"{entity[0]}-", keys.astype(str))),
            "feature_ts": pa.array(ts_ms * 1000, pa.timestamp("us", tz="UTC")),
        }
        if entity == "item":
            cols["seller_id"] = pa.array(np.char.add("s-", (keys % sizes["seller"]).astype(str)))
            cols["category"] = pa.array(np.char.add("c-", (keys % 16).astype(str)))
        for f in registry.stored_features(entity):
            lo, hi = f.valid_range
            cols[f.name] = rng.uniform(max(lo, 0.0), min(hi, 1000.0), len(keys))
        table = pa.table(cols)
        day = (ts_ms // 86_400_000).astype(np.int64)
        dataset = offline.dataset_name(settings, entity)
        for d in np.unique(day):
            part = table.filter(pa.array(day == d))
            stamp = datetime.fromtimestamp(int(d) * 86_400, tz=UTC).strftime("%Y-%m-%d")
            lake.write_partition("features", dataset, {"dt": stamp}, part, run_id="bench")
        rows[entity] = table.num_rows
    end = datetime.fromtimestamp((HISTORY_START_MS + hours * 3_600_000) / 1000, tz=UTC)
    if not snapshot:
        lake.write_json(
            offline.manifest_uri(lake, settings),
            {"version": offline.feature_set_version(settings), "published_through": end.isoformat()},
        )
        return settings, lake, rows
    # Publish as the feature job does: the latest snapshot (Spark, rebuilt from the full
    # history as after a backfill), then the manifest that vouches for it.
    from rankops.spark_session import get_spark

    spark = get_spark(settings, "rankops-bench-latest")
    try:
        start = datetime.fromtimestamp(HISTORY_START_MS / 1000, tz=UTC) - offline.HOUR
        window = offline.TimeWindow(start, end, backfill=True)
        latest = offline.write_latest(spark, lake, settings, "bench", end.isoformat(), window)
        offline_runs._publish_manifest(lake, settings, window, "bench", rows, end.isoformat(), latest)
    finally:
        spark.stop()
    return settings, lake, rows


def run(
    entities: int,
    reads: int,
    batch: int,
    compare: bool,
    feast_python: Path | None = None,
    history: int = 20,
    days: int = 30,
    snapshot: bool = True,
) -> dict[str, Any]:
    from datetime import datetime

    import redis

    from rankops.features import offline, registry
    from rankops.features.lookup import FeatureLookup
    from rankops.features.materialize import materialize
    from rankops.features.offline import latest as offline_latest
    from rankops.features.online.embedded import EmbeddedStore
    from rankops.features.online.redis import RedisConfig, RedisStore, make_redis

    out: dict[str, Any] = {
        "benchmark": "features_online",
        "machine": machine.describe(),
        "entities": entities,
        "batch": batch,
        "reads": reads,
        "history_rows_per_key": history,
        "history_days": days,
    }
    with tempfile.TemporaryDirectory(prefix="rankops-bench-") as tmp:
        folder = Path(tmp)
        proc, port = start_redis(folder)
        try:
            started = time.perf_counter()
            settings, lake, history_rows = offline_store(entities, history, days, folder / "home", snapshot)
            out["history_rows"] = history_rows
            out["publish_with_snapshot_s"] = round(time.perf_counter() - started, 1)
            manifest = offline.read_manifest(lake, settings)
            started = time.perf_counter()
            latest = offline.latest_values(lake, settings, "item")
            out["latest_values_item_s"] = round(time.perf_counter() - started, 3)
            out["latest_values_from"] = "snapshot" if manifest.get("latest_snapshot") else "history"
            through = datetime.fromisoformat(manifest["published_through"])
            started = time.perf_counter()
            scanned = offline_latest._latest_from_history(lake, settings, "item", through)
            out["latest_values_history_scan_item_s"] = round(time.perf_counter() - started, 3)
            assert latest.num_rows == entities
            assert latest.equals(scanned), "the snapshot must equal the history scan"
            item_ids = latest["item_id"].to_pylist()
            pick = random.Random(1)
            batches = [pick.sample(item_ids, batch) for _ in range(reads)]
            cfg = RedisConfig(url=f"redis://127.0.0.1:{port}/0", key_prefix="bench")
            stores: dict[str, Any] = {
                "embedded": EmbeddedStore(folder / "online.sqlite", recheck_seconds=1.0),
                "redis": RedisStore(make_redis(cfg, for_writes=True), cfg, recheck_seconds=1.0),
            }
            bare = redis.Redis(host="127.0.0.1", port=port)
            for kind, store in stores.items():
                report = materialize(lake, settings, stores=dict.fromkeys(registry.stored_entities(), store))
                assert report["item"]["rows"] == entities
                assert report["item"]["inlined"], "items carry their seller's and category's values"
                assert store.active_version("item").columns[: len(registry.stored_names("item"))] == (
                    registry.stored_names("item")
                )
                seconds = float(report["item"]["seconds"])  # type: ignore[arg-type]  # object in the report
                every_row = sum(int(r["rows"]) for r in report.values())  # type: ignore[call-overload]
                every_second = sum(float(r["seconds"]) for r in report.values())  # type: ignore[arg-type,misc]
                lookup = FeatureLookup(dict.fromkeys(("item", "seller", "category"), store))
                paths = {
                    "read_item_features": lambda ids, lk=lookup: lk.fetch({"item": ids}),
                    "fetch_items_all_entities": lambda ids, lk=lookup: lk.fetch_items(ids),
                    "fetch_items_all_entities_with_keys": lambda ids, lk=lookup: lk.fetch_items(ids, join_keys=True),
                }
                if kind == "redis":
                    assert store.active_version("item").layout == "hash", "materialization writes one hash"
                    item_hash = f"bench:item:{store.active_version('item').slot}"
                    ceilings = server_ceilings(bare, item_ids, bare.hmget(item_hash, item_ids))
                    stored = bare.hmget(item_hash, batches[0])
                    assert None not in stored and bare.mget([PEER_KEYS + k for k in batches[0]]) == stored, (
                        "the bare peers read the very values the store serves"
                    )
                    paths["peer_bare_mget"] = lambda ids: bare.mget([PEER_KEYS + k for k in ids])
                    paths["peer_bare_hmget"] = lambda ids, h=item_hash: bare.hmget(h, ids)
                measured = interleaved(paths, batches)
                out[kind] = {
                    "materialize_rows_per_s": round(entities / seconds),
                    "materialize_item_s": round(seconds, 3),
                    "materialize_all_entities_rows_per_s": round(every_row / every_second),
                    "fetch_items_round_trips": round_trips(lookup, batches[0]),
                    "read_item_features": measured["read_item_features"],
                    "fetch_items_all_entities": measured["fetch_items_all_entities"],
                    "fetch_items_all_entities_with_keys": measured["fetch_items_all_entities_with_keys"],
                }
                if kind == "redis":
                    out["peer_bare_mget"] = measured["peer_bare_mget"]
                    out["peer_bare_hmget"] = measured["peer_bare_hmget"]
            out["peer_naive_per_key_get"] = timed(
                lambda ids: [bare.get(PEER_KEYS + k) for k in ids], batches[: max(50, reads // 10)]
            )
            sample = min(entities, 20_000)
            payloads = bare.mget([PEER_KEYS + k for k in item_ids[:sample]])
            started = time.perf_counter()
            for k, v in zip(item_ids[:sample], payloads, strict=True):
                bare.set(f"naive:item:{k}", v, ex=3600)
            out["peer_naive_per_key_set_rows_per_s"] = round(sample / (time.perf_counter() - started))
            out["peer_server_ceiling_set_rows_per_s"] = ceilings["set"]
            out["peer_server_ceiling_hset_rows_per_s"] = ceilings["hset"]
            ours = out["redis"]
            all_vs_mget = ours["fetch_items_all_entities"]["p50_ms"] / out["peer_bare_mget"]["p50_ms"]
            out["targets"] = {  # issue 16, measured in this run beside the bare-MGET peer
                "all_entities_read_vs_bare_mget_p50": round(all_vs_mget, 2),
                "all_entities_read_vs_bare_mget_p50_ok": all_vs_mget <= 1.5,
                "all_entities_read_with_keys_vs_bare_mget_p50": round(
                    ours["fetch_items_all_entities_with_keys"]["p50_ms"] / out["peer_bare_mget"]["p50_ms"], 2
                ),
                "redis_materialize_rows_per_s": ours["materialize_rows_per_s"],
                "redis_materialize_rows_per_s_ok": ours["materialize_rows_per_s"] >= 500_000,
                "redis_materialize_vs_server_ceiling": round(  # the server's own ceiling for these HSETs
                    ours["materialize_rows_per_s"] / out["peer_server_ceiling_hset_rows_per_s"], 2
                ),
                "redis_materialize_vs_set_ex_ceiling": round(  # ... and for one SET … EX per value
                    ours["materialize_rows_per_s"] / out["peer_server_ceiling_set_rows_per_s"], 2
                ),
                "fetch_items_round_trips": ours["fetch_items_round_trips"],
            }
            out["ratios"] = {
                "redis_read_vs_bare_mget_p50": round(
                    ours["read_item_features"]["p50_ms"] / out["peer_bare_mget"]["p50_ms"], 2
                ),
                "naive_get_vs_redis_read_p50": round(
                    out["peer_naive_per_key_get"]["p50_ms"] / ours["read_item_features"]["p50_ms"], 1
                ),
                "redis_materialize_vs_naive_set": round(
                    ours["materialize_rows_per_s"] / out["peer_naive_per_key_set_rows_per_s"], 1
                ),
            }
            if compare:
                out["feast"] = run_feast(feast_python or FEAST_PYTHON, entities, batch, min(reads, 500), port)
                if "redis" in out["feast"]:
                    feast = out["feast"]
                    out["ratios"].update(
                        {
                            "feast_read_vs_redis_read_p50": round(
                                feast["redis"]["read"]["p50_ms"] / ours["read_item_features"]["p50_ms"], 1
                            ),
                            "feast_sqlite_read_vs_embedded_read_p50": round(
                                feast["sqlite"]["read"]["p50_ms"] / out["embedded"]["read_item_features"]["p50_ms"],
                                1,
                            ),
                            "redis_materialize_vs_feast": round(
                                ours["materialize_rows_per_s"] / feast["redis"]["materialize_rows_per_s"], 1
                            ),
                            "embedded_materialize_vs_feast_sqlite": round(
                                out["embedded"]["materialize_rows_per_s"] / feast["sqlite"]["materialize_rows_per_s"], 1
                            ),
                        }
                    )
            for store in stores.values():
                store.close()
            bare.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return out


def run_feast(python: Path, entities: int, batch: int, reads: int, port: int) -> dict[str, Any]:
    if not python.exists():
        return {"measured": False, "reason": f"{python} not found; see this module's docstring to install Feast"}
    command = [str(python), str(Path(__file__).with_name("features_feast_peer.py"))]
    command += ["--entities", str(entities), "--batch", str(batch), "--reads", str(reads)]
    done = subprocess.run(
        [*command, "--redis", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        return {"measured": False, "reason": done.stderr.strip().splitlines()[-1:] or ["feast peer failed"]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"measured": True, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=20, help="published rows per key in the offline store")
    parser.add_argument("--days", type=int, default=30, help="days (partitions) the history spans")
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--compare", action="store_true", help="also run Feast 0.67 (in .venv-feast) on the same rows")
    parser.add_argument("--feast-python", type=Path, default=None, help="python of a venv with feast installed")
    parser.add_argument(
        "--no-snapshot", action="store_true", help="publish no latest snapshot: materialize from the history scan"
    )
    parser.add_argument("--events", type=int, default=None, help="accepted for symmetry; --entities sets the size")
    args = parser.parse_args(argv)
    print(
        json.dumps(
            run(
                args.entities,
                args.reads,
                args.batch,
                args.compare,
                args.feast_python,
                args.history,
                args.days,
                not args.no_snapshot,
            )
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
