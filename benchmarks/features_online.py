"""Online stores: materialization rate and read latency, against peers in the same run.

    python -m benchmarks.features_online                       # 100k items x 6 features
    python -m benchmarks.features_online --compare             # + Feast 0.67 (see below)

Measured on a private redis-server (started on a free port, stopped at the end)
and the embedded SQLite store:

* materialization: rows/s from the offline Parquet table into the store (read,
  pack, write, activate), as ``rankops features materialize`` does it;
* reads: p50/p99 of one lookup of ``--batch`` random items x all their features
  (``FeatureLookup.fetch``, values decoded, defaults filled), and of the full
  ``fetch_items`` path (item, then its seller and category);
* peers in the same run: a bare redis-py ``MGET`` of the same packed values, a
  naive per-key client (one ``GET``/``SET`` per key), and with ``--compare`` Feast's
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
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
FEAST_PYTHON = REPO / ".venv-feast" / "bin" / "python"


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


def offline_tables(entities: int, folder: Path) -> dict[str, Path]:
    """Parquet files shaped like the offline store's latest values, one per entity."""
    from rankops.features import registry

    rng = np.random.default_rng(0)
    sizes = {"item": entities, "seller": max(1, entities // 25), "category": 16}
    paths = {}
    for entity, n in sizes.items():
        key = registry.ENTITIES[entity].key
        cols: dict[str, Any] = {key: [f"{entity[0]}-{i}" for i in range(n)]}
        if entity == "item":
            cols["seller_id"] = [f"s-{i % sizes['seller']}" for i in range(n)]
            cols["category"] = [f"c-{i % 16}" for i in range(n)]
        for f in registry.stored_features(entity):
            lo, hi = f.valid_range
            cols[f.name] = rng.uniform(max(lo, 0.0), min(hi, 1000.0), n)
        paths[entity] = folder / f"{entity}.parquet"
        pq.write_table(pa.table(cols), paths[entity])
    return paths


def materialize_file(store: Any, entity: str, path: Path, version: str) -> float:
    """Seconds to read, pack, write and activate one entity's offline rows."""
    from rankops.features import registry
    from rankops.features.materialize import rows_of, write_version

    started = time.perf_counter()
    rows = rows_of(pq.read_table(path), entity)
    write_version(store, entity, version, rows, 20_000)
    assert store.active_version(entity).columns == registry.stored_names(entity)
    return time.perf_counter() - started


def run(entities: int, reads: int, batch: int, compare: bool, feast_python: Path | None = None) -> dict[str, Any]:
    import redis

    from rankops.config_sections import RedisConfig
    from rankops.features.lookup import FeatureLookup
    from rankops.features.online.embedded import EmbeddedStore
    from rankops.features.online.redis import RedisStore, make_redis

    out: dict[str, Any] = {"benchmark": "features_online", "entities": entities, "batch": batch, "reads": reads}
    with tempfile.TemporaryDirectory(prefix="rankops-bench-") as tmp:
        folder = Path(tmp)
        proc, port = start_redis(folder)
        try:
            paths = offline_tables(entities, folder)
            item_ids = pq.read_table(paths["item"], columns=["item_id"])["item_id"].to_pylist()
            pick = random.Random(1)
            batches = [pick.sample(item_ids, batch) for _ in range(reads)]
            cfg = RedisConfig(url=f"redis://127.0.0.1:{port}/0", key_prefix="bench")
            stores: dict[str, Any] = {
                "embedded": EmbeddedStore(folder / "online.sqlite", recheck_seconds=1.0),
                "redis": RedisStore(make_redis(cfg, for_writes=True), cfg, recheck_seconds=1.0),
            }
            for kind, store in stores.items():
                seconds = materialize_file(store, "item", paths["item"], "v1-bench")
                for entity in ("seller", "category"):
                    materialize_file(store, entity, paths[entity], "v1-bench")
                lookup = FeatureLookup(dict.fromkeys(("item", "seller", "category"), store))
                out[kind] = {
                    "materialize_rows_per_s": round(entities / seconds),
                    "read_item_features": timed(lambda ids, lk=lookup: lk.fetch({"item": ids}), batches),
                    "fetch_items_all_entities": timed(lambda ids, lk=lookup: lk.fetch_items(ids), batches),
                }
            bare = redis.Redis(host="127.0.0.1", port=port)
            slot = stores["redis"].active_version("item").slot
            out["peer_bare_mget"] = timed(lambda ids: bare.mget([f"bench:item:{slot}:{k}" for k in ids]), batches)
            out["peer_naive_per_key_get"] = timed(
                lambda ids: [bare.get(f"bench:item:{slot}:{k}") for k in ids], batches[: max(50, reads // 10)]
            )
            sample = min(entities, 20_000)
            payloads = bare.mget([f"bench:item:{slot}:{k}" for k in item_ids[:sample]])
            started = time.perf_counter()
            for k, v in zip(item_ids[:sample], payloads, strict=True):
                bare.set(f"naive:item:{k}", v, ex=3600)
            out["peer_naive_per_key_set_rows_per_s"] = round(sample / (time.perf_counter() - started))
            ours = out["redis"]
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
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--compare", action="store_true", help="also run Feast 0.67 (in .venv-feast) on the same rows")
    parser.add_argument("--feast-python", type=Path, default=None, help="python of a venv with feast installed")
    parser.add_argument("--events", type=int, default=None, help="accepted for symmetry; --entities sets the size")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.entities, args.reads, args.batch, args.compare, args.feast_python)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
