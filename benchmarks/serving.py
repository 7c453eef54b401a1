"""Serving benchmark: rankops beside its floor and its peer, in one run, JSON on stdout.

For 100 candidates and a 500-tree LightGBM lambdarank model:

* floor: a bare redis-py MGET of the candidates' keys + unpacking + bare
  ``Booster.predict`` (one thread), in-process, no HTTP; measured in alternating blocks with
  rankops over HTTP from Redis, so both see the same load;
* the compiled path: the same with the scorer the server loads (compiled trees, verified at
  load; docs/scoring.md), the model's size and compile time, and the served scores checked
  against bare LightGBM's on every benchmark request, in-process and over HTTP (max absolute
  difference <= 1e-9, asserted);
* rankops over HTTP with features from Redis, from the embedded store, and inline;
  rankops in-process (``Ranker.rank``) to show what HTTP costs;
* peer: ``mlflow models serve`` of the same model with the same 100 rows inline,
  and Redis fetch + mlflow serve chained by the client;
* load: concurrent keep-alive clients for ``--load-seconds`` against the Redis-backed
  server (status counts, throughput, throughput per server CPU second), with the local
  feedback log on (``load``, ``targets.requests_per_cpu_s``) and, on a second server, off as
  in a SageMaker container, whose answers the endpoint's data capture logs
  (``load_without_feedback_log``, ``targets.requests_per_cpu_s_without_feedback_log``): the
  two in alternating blocks (``blocks_requests_per_cpu_s``), so both see the same minutes;
* fault: a private redis-server stopped, restarted and frozen under load (never
  the shared one): zero 5xx, the fallback counter rises, the champion returns; the level
  that answered and NDCG@10 on the holdout per phase, the outage's over the champion's.

    python -m benchmarks.serving            # full run (~5 minutes)
    python -m benchmarks.serving --quick    # tiny smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import machine
from benchmarks.serving_fault import fault_test
from benchmarks.serving_http import alternating, encode_post, loaded, run_load
from benchmarks.serving_setup import (
    NOW,
    SHARED_REDIS,
    VERSION,
    free_port,
    item_features,
    model_matrix,
    percentiles,
    settings_for,
    start,
    stop,
    train_and_register,
)
from benchmarks.serving_store import redis_client, redis_store, seed_items

MAX_ABS_DIFF = 1e-9  # compiled scores vs LightGBM's (rankops.scoring.scorer.MAX_ABS_DIFF)
LOAD_BLOCKS = 6  # alternating load blocks per server (--load-seconds each in all)


def serve_redis(home: Path, port: int, url: str, prefix: str, feedback_log: bool = True) -> None:
    """Subprocess mode: the rankops server reading item features from Redis (without the local
    feedback log: as a SageMaker container serves, whose answers the endpoint's data capture logs)."""
    from rankops.serving.server import run

    settings = settings_for(home)
    if not feedback_log:
        settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"feedback_log": False})})
    store = redis_store(url, prefix, settings.online_store.redis.socket_timeout_ms)
    run(settings, "127.0.0.1", port, workers=1, stores={"item": store})


# -- measurements -------------------------------------------------------------------------------
def floor(predict: Callable[[np.ndarray], Any], client: Any, keys: list[list[str]], requests: int) -> dict[str, Any]:
    """MGET + unpacking + ``predict``, in-process: with bare ``Booster.predict`` it is the floor."""
    fetch, scoring, total = floor_samples(predict, client, keys, range(requests))
    return {"redis_mget": percentiles(fetch), "predict": percentiles(scoring), "total": percentiles(total)}


def floor_samples(
    predict: Callable[[np.ndarray], Any], client: Any, keys: list[list[str]], indices: range
) -> tuple[list[float], list[float], list[float]]:
    """Seconds of the floor's requests ``indices``: (MGET, predict, total) each."""
    from rankops.features import registry
    from rankops.features.online.packing import unpack_rows

    defaults = np.array([f.default for f in registry.stored_features("item")])
    width = len(defaults)
    fetch, scoring, total = [], [], []
    for k in indices:
        t0 = time.perf_counter()
        payloads = client.mget(keys[k % len(keys)])
        t1 = time.perf_counter()
        stored, _, _ = unpack_rows(payloads, width, defaults, VERSION)
        x = model_matrix(stored, "toys")
        t2 = time.perf_counter()
        predict(x)
        t3 = time.perf_counter()
        fetch.append(t1 - t0)
        scoring.append(t3 - t2)
        total.append(t3 - t0)
    return fetch, scoring, total


def floor_beside_http(
    predict: Callable[[np.ndarray], Any], client: Any, keys: list[list[str]], port: int, bodies: list[bytes],
    requests: int, rounds: int = 10,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """The floor and rankops over HTTP in alternating blocks (``rounds`` of each, ``requests`` in
    all per side), so load that comes and goes on a shared machine weighs on both alike and
    ``targets.p50_vs_floor`` compares like with like. -> (floor, http) figures."""
    raws = [encode_post("/invocations", b) for b in bodies]
    run_load("127.0.0.1", port, raws, concurrency=1, count=min(50, requests))  # warm-up
    floor_samples(predict, client, keys, range(min(50, requests)))
    fetch: list[float] = []
    scoring: list[float] = []
    total: list[float] = []
    http: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    block = max(1, requests // rounds)
    for lo in range(0, requests, block):
        part = floor_samples(predict, client, keys, range(lo, min(lo + block, requests)))
        fetch, scoring, total = fetch + part[0], scoring + part[1], total + part[2]
        result = run_load("127.0.0.1", port, raws, concurrency=1, count=min(block, requests - lo))
        http += result.latencies_s
        errors += result.errors
        for status, n in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    figures = {"redis_mget": percentiles(fetch), "predict": percentiles(scoring), "total": percentiles(total)}
    return figures, {**percentiles(http), "status": statuses, "errors": errors, "interleaved_rounds": rounds}


def parity(booster: Any, model: Any, matrices: list[np.ndarray]) -> dict[str, Any]:
    """The served model's scores vs bare LightGBM's on the benchmark's requests (asserted)."""
    worst = max(float(np.max(np.abs(model.predict(m) - booster.predict(m, num_threads=1)))) for m in matrices)
    assert worst <= MAX_ABS_DIFF, f"{model.engine} scores differ from LightGBM's by {worst:.3g}"
    return {"engine": model.engine, "requests": len(matrices), "max_abs_diff": worst}


def http_parity(port: int, bodies: list[bytes], expected: list[dict[str, float]]) -> dict[str, Any]:
    """The HTTP server's scores vs bare LightGBM's, item by item, on the benchmark's requests."""
    worst = 0.0
    for body, want in zip(bodies, expected, strict=True):
        post = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(post, timeout=30) as response:
            ranking = json.loads(response.read())["ranking"]
        assert {r["item_id"] for r in ranking} == set(want)
        worst = max(worst, max(abs(r["score"] - want[r["item_id"]]) for r in ranking))
    assert worst <= MAX_ABS_DIFF, f"served scores differ from LightGBM's by {worst:.3g}"
    return {"requests": len(bodies), "max_abs_diff": worst}


def sequential(port: int, bodies: list[bytes], count: int) -> dict[str, Any]:
    raws = [encode_post("/invocations", b) for b in bodies]
    run_load("127.0.0.1", port, raws, concurrency=1, count=min(50, count))  # warm-up
    result = run_load("127.0.0.1", port, raws, concurrency=1, count=count)
    return {**percentiles(result.latencies_s), "status": result.statuses, "errors": result.errors}


def chained(client: Any, port: int, keys: list[list[str]], count: int) -> dict[str, Any]:
    """The peer pipeline a team would assemble: the client reads Redis, then posts the rows to mlflow."""
    import asyncio

    from benchmarks.serving_http import Connection
    from rankops.features import registry
    from rankops.features.online.packing import unpack_rows

    defaults = np.array([f.default for f in registry.stored_features("item")])
    columns = registry.model_features()

    async def main() -> list[float]:
        conn = await Connection.open("127.0.0.1", port)
        out = []
        for k in range(count):
            t0 = time.perf_counter()
            stored, _, _ = unpack_rows(client.mget(keys[k % len(keys)]), len(defaults), defaults, VERSION)
            body = json.dumps({"dataframe_split": {"columns": columns, "data": model_matrix(stored, "toys").tolist()}})
            status, _ = await conn.send(encode_post("/invocations", body.encode()))
            assert status == 200
            out.append(time.perf_counter() - t0)
        conn.close()
        return out

    return percentiles(asyncio.run(main()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every part")
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per latency measurement")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-phase-seconds", type=float, default=6.0)
    parser.add_argument(
        "--no-feedback-log",
        action="store_true",
        help="serve as a SageMaker container does: no local feedback log (the endpoint's data capture logs answers)",
    )
    parser.add_argument("--serve-redis", nargs=2, metavar=("URL", "PREFIX"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_redis:
        serve_redis(Path(args.home), args.port, *args.serve_redis, feedback_log=not args.no_feedback_log)
        return 0
    if args.quick:
        args.trees, args.requests, args.load_seconds, args.fault_phase_seconds = 20, 40, 2.0, 1.5
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    work = Path(tempfile.mkdtemp(prefix="rankops-bench-serving-"))
    home = work / "home"
    settings = settings_for(home)
    report: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items() if k not in ("serve_redis", "home", "port")}
    }
    report["config"]["machine"] = machine.describe()
    shared = redis_client(SHARED_REDIS, 1.0)
    prefix = f"rankops-bench-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        booster, model_uri, report["model"] = train_and_register(settings, args.trees, 4000 if args.quick else 20_000)
        n_items = 10_000
        items = [f"i-{k}" for k in range(n_items)]
        values = item_features(n_items, 3)
        from rankops.features import registry
        from rankops.features.online.embedded import EmbeddedStore
        from rankops.features.online.packing import pack_rows

        names = [f.name for f in registry.stored_features("item")]
        shared_store = redis_store(SHARED_REDIS, prefix, 1000)
        for store in (EmbeddedStore(home / "online" / "features.sqlite"), shared_store):
            seed_items(store, items, values, VERSION)
        floor_keys = [f"{prefix}:floor:item:{item}" for item in items]  # the floor's MGET: a key per value
        shared.mset(dict(zip(floor_keys, pack_rows(VERSION, values), strict=True)))
        rng = np.random.default_rng(4)
        picks = [rng.choice(n_items, args.candidates, replace=False) for _ in range(64)]
        keys = [[floor_keys[i] for i in p] for p in picks]
        assert shared.mget(keys[0]) == shared_store.read("item", [items[i] for i in picks[0]]), "floor reads ours"
        requests = [{"user_id": f"u-{k}", "context": {"category": "toys"}, "candidates": [items[i] for i in p]}
                    for k, p in enumerate(picks)]  # fmt: skip
        ts = {"ts": NOW}
        by_id = [json.dumps({**r, **ts}).encode() for r in requests]
        inline = [
            json.dumps({**r, **ts, "features": {n: values[p, j].tolist() for j, n in enumerate(names)}}).encode()
            for r, p in zip(requests, picks, strict=True)
        ]
        columns = registry.model_features()
        mlflow_rows = [
            json.dumps(
                {"dataframe_split": {"columns": columns, "data": model_matrix(values[p], "toys").tolist()}}
            ).encode()
            for p in picks
        ]

        from rankops.serving.model import load_from_registry

        served = load_from_registry(settings)  # what the server loads: compiled when verified
        if served.scorer is not None and served.scorer.native is not None:
            report["model"]["compiled_object_bytes"] = served.scorer.native.meta.object_bytes
            report["model"]["compiled_code_bytes"] = served.scorer.native.meta.code_bytes
            report["model"]["code_model"] = served.scorer.native.meta.code_model
        matrices = [model_matrix(values[p], "toys") for p in picks]
        report["parity"] = parity(booster, served, matrices)
        report["compiled_in_process"] = floor(served.predict, shared, keys, args.requests)

        from rankops.serving.schema import parse_request
        from rankops.serving.server import build_server

        in_process = {}
        for label, stores in (("redis", {"item": redis_store(SHARED_REDIS, prefix, 50)}), ("embedded", None)):
            ranker = build_server(settings, stores=stores).ranker
            parsed = [parse_request(b, "application/json", 1000, 10**7) for b in by_id]
            times = []
            for k in range(args.requests):
                t0 = time.perf_counter()
                ranker.rank(parsed[k % len(parsed)])
                times.append(time.perf_counter() - t0)
            in_process[label] = percentiles(times)
        report["rankops_in_process"] = in_process

        http: dict[str, Any] = {}
        redis_port, embedded_port = free_port(), free_port()
        command = [sys.executable, "-m", "benchmarks.serving", "--serve-redis", SHARED_REDIS, prefix,
                   "--home", str(home), "--port", str(redis_port),
                   *(["--no-feedback-log"] if args.no_feedback_log else [])]  # fmt: skip
        redis_server = start(command, redis_port, work / "redis-server.log")
        procs.append(redis_server)
        # The floor (MGET + bare Booster.predict, unchanged) and rankops over HTTP, in alternating blocks.
        report["floor"], http["redis"] = floor_beside_http(
            lambda x: booster.predict(x, num_threads=1), shared, keys, redis_port, by_id, args.requests
        )
        expected = [dict(zip(r["candidates"], booster.predict(m, num_threads=1).tolist(), strict=True))
                    for r, m in zip(requests, matrices, strict=True)]  # fmt: skip
        report["parity"]["http"] = http_parity(redis_port, by_id, expected)
        procs.append(start([str(Path(sys.executable).parent / "rankops"), "--home", str(home), "serve", "--port",
                            str(embedded_port)], embedded_port, work / "embedded-server.log"))  # fmt: skip
        http["embedded"] = sequential(embedded_port, by_id, args.requests)
        http["inline"] = sequential(embedded_port, inline, args.requests)
        report["rankops_http"] = http

        import mlflow

        model_dir = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(work / "model")))
        mlflow_port = free_port()
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        mlflow_proc = start([str(mlflow_bin), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                             "-p", str(mlflow_port), "-w", "1"], mlflow_port, work / "mlflow.log")  # fmt: skip
        procs.append(mlflow_proc)
        report["mlflow_serve_inline"] = sequential(mlflow_port, mlflow_rows, args.requests)
        report["redis_then_mlflow_chained"] = chained(shared, mlflow_port, keys, args.requests)
        stop(mlflow_proc)
        procs.remove(mlflow_proc)

        raws = [encode_post("/invocations", b) for b in by_id]
        if args.no_feedback_log:
            report["load"] = loaded(redis_server.pid, redis_port, raws, args.concurrency, args.load_seconds)
        else:  # the same load on a server as a SageMaker container serves, in alternating blocks
            port = free_port()
            container = start([*command[:-1], str(port), "--no-feedback-log"], port, work / "container.log")
            procs.append(container)
            run_load("127.0.0.1", port, raws, concurrency=1, count=50)  # warm-up
            both = {"load": (redis_server.pid, redis_port), "load_without_feedback_log": (container.pid, port)}
            report.update(alternating(both, raws, args.concurrency, args.load_seconds, LOAD_BLOCKS))
        for proc in procs:
            stop(proc)
        procs.clear()
        report["fault"] = fault_test(home, work / "fault", items, values, by_id, args.fault_phase_seconds,
                                     max(2, args.concurrency // 2), 4000 if args.quick else 20_000)  # fmt: skip
        report["targets"] = targets(report)
    finally:
        for proc in procs:
            stop(proc)
        stale = list(shared.scan_iter(match=f"{prefix}:*", count=5000))
        for batch in range(0, len(stale), 1000):
            shared.delete(*stale[batch : batch + 1000])
        shared.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each as the measured ratio and whether it is met (same run only)."""
    ours = report["rankops_http"]["redis"]
    floor_total = report["floor"]["total"]
    mlflow = report["mlflow_serve_inline"]
    chain = report["redis_then_mlflow_chained"]
    p50_ratio = ours["p50_ms"] / floor_total["p50_ms"]
    p99_ratio = ours["p99_ms"] / floor_total["p99_ms"]
    per_core = report["load"]["requests_per_cpu_s"]
    container = report.get("load_without_feedback_log", {}).get("requests_per_cpu_s")
    return {
        "p50_vs_floor": round(p50_ratio, 2),
        "p50_vs_floor_ok": p50_ratio <= 0.6,  # issue 16: compiled trees serve faster than the floor
        "p99_vs_floor": round(p99_ratio, 2),
        "p99_vs_floor_ok": p99_ratio <= 2.0,
        "p50_below_mlflow_inline": ours["p50_ms"] < mlflow["p50_ms"],
        "p50_vs_chained": round(ours["p50_ms"] / chain["p50_ms"], 2),
        "p50_vs_chained_ok": ours["p50_ms"] <= 0.5 * chain["p50_ms"],
        "requests_per_cpu_s": per_core,
        "requests_per_cpu_s_ok": per_core is not None and per_core >= 800,
        "requests_per_cpu_s_without_feedback_log": container,  # as a SageMaker container serves
        "requests_per_cpu_s_without_feedback_log_ok": container is not None and container >= 800,
        "engine": report["parity"]["engine"],
        "scores_within_1e-9": report["parity"]["max_abs_diff"] <= MAX_ABS_DIFF
        and report["parity"]["http"]["max_abs_diff"] <= MAX_ABS_DIFF,
        "outage_ndcg_ratio": report["fault"]["outage_ndcg_ratio"],  # issue 14: >= 0.85, from a model
        "outage_ndcg_ratio_ok": report["fault"]["outage_ndcg_ratio_ok"]
        and report["fault"]["outage_answered_by_a_model"],
        "zero_5xx": report["fault"]["zero_5xx"]
        and all(
            not any(k >= 500 for k in load["status"]) and load["connection_errors"] == 0
            for load in (report["load"], report.get("load_without_feedback_log"))
            if load is not None
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
