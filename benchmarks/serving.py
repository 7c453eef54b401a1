"""Serving benchmark: rankops beside its floor and its peer, in one run, JSON on stdout.

For 100 candidates and a 500-tree LightGBM lambdarank model:

* floor: a bare redis-py MGET of the candidates' keys + unpacking + bare
  ``Booster.predict`` (one thread), in-process, no HTTP;
* rankops over HTTP with features from Redis, from the embedded store, and inline;
  rankops in-process (``Ranker.rank``) to show what HTTP costs;
* peer: ``mlflow models serve`` of the same model with the same 100 rows inline,
  and Redis fetch + mlflow serve chained by the client;
* load: concurrent keep-alive clients for ``--load-seconds`` against the Redis-backed
  server (status counts, throughput, throughput per server CPU second);
* fault: a private redis-server stopped, restarted and frozen under load (never
  the shared one): zero 5xx, the fallback counter rises, the champion returns.

    python -m benchmarks.serving            # full run (~4 minutes)
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
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serving_http import encode_post, run_load
from benchmarks.serving_store import PrivateRedis, redis_client, redis_store, seed_items

REPO = Path(__file__).resolve().parent.parent
SHARED_REDIS = "redis://127.0.0.1:6379/0"
CATEGORIES = ("toys", "vehicles", "furniture", "fashion", "garden")
NOW = 1_800_000_000.0
VERSION = "bench-v1"


def settings_for(home: Path) -> Any:
    from rankops.config import load_settings

    return load_settings(env="local", home=home, config_file=REPO / "rankops.toml", environ={})


def percentiles(values_s: list[float]) -> dict[str, float | int | None]:
    if not values_s:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    ms = np.asarray(values_s) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "n": len(ms),
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
    }


# -- data and model ---------------------------------------------------------------------------
def item_features(count: int, seed: int) -> np.ndarray:
    from rankops.features import on_demand, registry

    rng = np.random.default_rng(seed)
    columns = {
        "ctr_7d": rng.beta(2, 12, count),
        "impressions_7d": rng.integers(0, 5000, count).astype(float),
        "image_quality_score": rng.random(count),
        "price": rng.gamma(2.0, 40.0, count),
        "created_at_s": NOW - rng.random(count) * 60 * 86_400,
        "category_code": np.array([on_demand.category_code(CATEGORIES[k % len(CATEGORIES)]) for k in range(count)]),
    }
    return np.column_stack([columns[f.name] for f in registry.stored_features("item")])


def model_matrix(stored: np.ndarray, category: str) -> np.ndarray:
    """Item features plus registry defaults for the joined entities (the benchmark serves items only)."""
    from rankops.features import on_demand, registry

    columns = {f.name: stored[:, i] for i, f in enumerate(registry.stored_features("item"))}
    for entity in registry.joined_entities("item"):
        columns.update({f.name: np.full(len(stored), f.default) for f in registry.stored_features(entity)})
    columns.update(on_demand.compute(columns, NOW, on_demand.category_code(category)))
    return np.column_stack([columns[n] for n in registry.model_features()])


def train_and_register(settings: Any, trees: int, rows: int) -> tuple[Any, str]:
    import lightgbm as lgb
    import pandas as pd

    from rankops import registry
    from rankops.features.registry import model_features

    rng = np.random.default_rng(1)
    stored = item_features(rows, 2)
    x = model_matrix(stored, "toys")
    match = x[:, model_features().index("category_match")]
    utility = 8 * stored[:, 0] + stored[:, 2] + match + rng.normal(0, 0.3, rows)
    label = np.clip(np.round(utility), 0, 4).astype(int)
    params = {"objective": "lambdarank", "num_leaves": 31, "min_data_in_leaf": 20, "verbosity": -1, "num_threads": 2}
    booster = lgb.train(params, lgb.Dataset(x, label, group=[50] * (rows // 50), feature_name=model_features()), trees)
    frame = pd.DataFrame(x[:5], columns=model_features())
    registered = registry.log_ranker(
        settings, booster, params=params, metrics={}, history={}, input_example=frame, tags={"benchmark": "serving"}
    )
    registry.set_alias(settings, registry.CHAMPION, registered.version)
    return booster, registered.model_uri


# -- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    from rankops.background import free_port as pick

    return pick(0)


def start(command: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    from rankops.background import wait_until_ready

    env = dict(env or os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow execs `uvicorn`
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", 120, proc)
    except Exception:
        print(log.read_text()[-3000:], file=sys.stderr)
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, 9)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_redis(home: Path, port: int, url: str, prefix: str) -> None:
    """Subprocess mode: the rankops server reading item features from Redis."""
    from rankops.serving.server import run

    settings = settings_for(home)
    store = redis_store(url, prefix, settings.online_store.redis.socket_timeout_ms)
    run(settings, "127.0.0.1", port, workers=1, stores={"item": store})


def fallback_count(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("rankops_fallback_total"))


# -- measurements -------------------------------------------------------------------------------
def floor(booster: Any, client: Any, keys: list[list[str]], requests: int) -> dict[str, Any]:
    from rankops.features import registry
    from rankops.features.online.packing import unpack_rows

    defaults = np.array([f.default for f in registry.stored_features("item")])
    width = len(defaults)
    fetch, predict, total = [], [], []
    for k in range(requests):
        t0 = time.perf_counter()
        payloads = client.mget(keys[k % len(keys)])
        t1 = time.perf_counter()
        stored, _, _ = unpack_rows(payloads, width, defaults, VERSION)
        x = model_matrix(stored, "toys")
        t2 = time.perf_counter()
        booster.predict(x, num_threads=1)
        t3 = time.perf_counter()
        fetch.append(t1 - t0)
        predict.append(t3 - t2)
        total.append(t3 - t0)
    return {"redis_mget": percentiles(fetch), "predict": percentiles(predict), "total": percentiles(total)}


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


def fault_test(home: Path, folder: Path, items: list[str], values: np.ndarray, bodies: list[bytes],
               phase_s: float, concurrency: int) -> dict[str, Any]:  # fmt: skip

    private = PrivateRedis(folder)
    private.start()
    prefix = "rankops-bench-fault"
    store = redis_store(private.url, prefix, 1000)
    seed_items(store, items, values, VERSION)
    store.close()
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.serving", "--serve-redis", private.url, prefix, "--home", str(home),
               "--port", str(port)]  # fmt: skip
    server = start(command, port, folder / "server.log")
    raws = [encode_post("/invocations", b) for b in bodies]
    phases: list[dict[str, Any]] = []
    counters = {"before": fallback_count(port)}
    actions = [("normal", None), ("redis stopped", private.stop), ("redis restarted", private.start),
               ("redis frozen", private.pause), ("redis resumed", private.resume)]  # fmt: skip
    try:
        for name, action in actions:
            if action is not None:
                action()
            result = run_load("127.0.0.1", port, raws, concurrency, seconds=phase_s, keep_bodies=True)
            answers = [json.loads(b) for b in result.bodies if b.startswith(b"{")]
            fallback = sum(a.get("fallback") is not None for a in answers)
            tail = answers[len(answers) // 2 :]
            phases.append(
                {
                    "phase": name,
                    **percentiles(result.latencies_s),
                    "status": result.statuses,
                    "connection_errors": result.errors,
                    "server_5xx": sum(v for k, v in result.statuses.items() if k >= 500),
                    "fallback_share": round(fallback / max(1, len(answers)), 4),
                    "fallback_share_second_half": round(
                        sum(a.get("fallback") is not None for a in tail) / max(1, len(tail)), 4
                    ),
                }
            )
            counters[name] = fallback_count(port)
    finally:
        stop(server)
        private.stop()
    return {
        "phases": phases,
        "fallback_counter": counters,
        "zero_5xx": all(p["server_5xx"] == 0 and p["connection_errors"] == 0 for p in phases),
        "fallback_counter_rose": counters["redis stopped"] > counters["normal"],
        # recovered: once Redis is back, (almost) every answer in the second half of the phase is the champion's
        # again (a stray read timing out on a saturated machine still falls back, as it should)
        "recovered": phases[2]["fallback_share_second_half"] <= 0.01
        and phases[-1]["fallback_share_second_half"] <= 0.01,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every part")
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per latency measurement")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-phase-seconds", type=float, default=6.0)
    parser.add_argument("--serve-redis", nargs=2, metavar=("URL", "PREFIX"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_redis:
        serve_redis(Path(args.home), args.port, *args.serve_redis)
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
    report["config"]["cpus"] = os.cpu_count()
    shared = redis_client(SHARED_REDIS, 1.0)
    prefix = f"rankops-bench-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        booster, model_uri = train_and_register(settings, args.trees, 4000 if args.quick else 20_000)
        n_items = 10_000
        items = [f"i-{k}" for k in range(n_items)]
        values = item_features(n_items, 3)
        from rankops.features import registry
        from rankops.features.online.embedded import EmbeddedStore

        names = [f.name for f in registry.stored_features("item")]
        shared_store = redis_store(SHARED_REDIS, prefix, 1000)
        for store in (EmbeddedStore(home / "online" / "features.sqlite"), shared_store):
            seed_items(store, items, values, VERSION)
        slot = shared_store.active_version("item").slot  # type: ignore[union-attr]
        rng = np.random.default_rng(4)
        picks = [rng.choice(n_items, args.candidates, replace=False) for _ in range(64)]
        keys = [[f"{prefix}:item:{slot}:{items[i]}" for i in p] for p in picks]
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

        report["floor"] = floor(booster, shared, keys, args.requests)

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
                   "--home", str(home), "--port", str(redis_port)]  # fmt: skip
        redis_server = start(command, redis_port, work / "redis-server.log")
        procs.append(redis_server)
        http["redis"] = sequential(redis_port, by_id, args.requests)
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

        cpu_before = cpu_seconds(redis_server.pid)
        load = run_load("127.0.0.1", redis_port, [encode_post("/invocations", b) for b in by_id], args.concurrency,
                        seconds=args.load_seconds)  # fmt: skip
        cpu = cpu_seconds(redis_server.pid) - cpu_before
        report["load"] = {
            "seconds": round(load.elapsed_s, 2),
            "concurrency": args.concurrency,
            "requests": len(load.latencies_s),
            "status": load.statuses,
            "connection_errors": load.errors,
            "requests_per_s": round(len(load.latencies_s) / load.elapsed_s, 1),
            "server_cpu_s": round(cpu, 2),
            "requests_per_cpu_s": round(len(load.latencies_s) / cpu, 1) if cpu else None,
            "latency": percentiles(load.latencies_s),
        }
        for proc in procs:
            stop(proc)
        procs.clear()
        report["fault"] = fault_test(home, work / "fault", items, values, by_id, args.fault_phase_seconds,
                                     max(2, args.concurrency // 2))  # fmt: skip
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
    return {
        "p50_vs_floor": round(p50_ratio, 2),
        "p50_vs_floor_ok": p50_ratio <= 1.6,
        "p99_vs_floor": round(p99_ratio, 2),
        "p99_vs_floor_ok": p99_ratio <= 2.0,
        "p50_below_mlflow_inline": ours["p50_ms"] < mlflow["p50_ms"],
        "p50_vs_chained": round(ours["p50_ms"] / chain["p50_ms"], 2),
        "p50_vs_chained_ok": ours["p50_ms"] <= 0.5 * chain["p50_ms"],
        "requests_per_cpu_s": per_core,
        "requests_per_cpu_s_ok": per_core is not None and per_core >= 300,
        "zero_5xx": report["fault"]["zero_5xx"]
        and not any(k >= 500 for k in report["load"]["status"])
        and report["load"]["connection_errors"] == 0,
    }


if __name__ == "__main__":
    sys.exit(main())
