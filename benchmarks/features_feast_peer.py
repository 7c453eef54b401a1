"""Peer for benchmarks.features_online: Feast's materialize and get_online_features on
the same rows, run in Feast's own virtualenv (Feast pins versions that clash with
rankops', so it is never installed into the project's venv):

    python3 -m venv .venv-feast && .venv-feast/bin/pip install "feast[redis]==0.67.0"
    .venv-feast/bin/python benchmarks/features_feast_peer.py --entities 100000 --features 6 \
        --redis 127.0.0.1:6380 --reads 500

Standalone on purpose (imports nothing from rankops). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd


def percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99))}


def run(store_type: str, args: argparse.Namespace, folder: Path) -> dict[str, object]:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64

    repo = folder / store_type
    (repo / "data").mkdir(parents=True)
    if store_type == "redis":
        online = f'online_store:\n  type: redis\n  connection_string: "{args.redis}"\n'
    else:
        online = f"online_store:\n  type: sqlite\n  path: {repo / 'data' / 'online.db'}\n"
    (repo / "feature_store.yaml").write_text(
        f"project: bench_{store_type}\nregistry: {repo / 'data' / 'registry.db'}\nprovider: local\n"
        f"{online}entity_key_serialization_version: 3\n"
    )
    rng = np.random.default_rng(1)
    now = datetime.now(UTC).replace(microsecond=0)
    frame = pd.DataFrame({f"f{i}": rng.random(args.entities) for i in range(args.features)})
    frame.insert(0, "item_id", [f"i-{i}" for i in range(args.entities)])
    frame["event_timestamp"] = now - timedelta(minutes=5)
    source_path = repo / "data" / "items.parquet"
    frame.to_parquet(source_path)

    item = Entity(name="item", join_keys=["item_id"])
    view = FeatureView(
        name="item_stats",
        entities=[item],
        ttl=timedelta(days=1),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(args.features)],
        source=FileSource(path=str(source_path), timestamp_field="event_timestamp"),
        online=True,
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([item, view])
    started = time.perf_counter()
    store.materialize(start_date=now - timedelta(hours=1), end_date=now)
    seconds = time.perf_counter() - started
    refs = [f"item_stats:f{i}" for i in range(args.features)]
    ids = [f"i-{i}" for i in range(args.entities)]
    pick = random.Random(7)
    samples = []
    for n in range(args.reads + 20):
        rows = [{"item_id": k} for k in pick.sample(ids, args.batch)]
        t0 = time.perf_counter()
        result = store.get_online_features(features=refs, entity_rows=rows).to_dict()
        if n >= 20:
            samples.append(time.perf_counter() - t0)
    assert len(result["f0"]) == args.batch and result["f0"][0] is not None
    store.teardown()
    return {"materialize_rows_per_s": args.entities / seconds, "read": percentiles(samples)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=6)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--redis", default="127.0.0.1:6379")
    args = parser.parse_args()
    import feast

    with tempfile.TemporaryDirectory() as folder:
        out = {"feast_version": feast.__version__}
        for kind in ("redis", "sqlite"):
            out[kind] = run(kind, args, Path(folder))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
