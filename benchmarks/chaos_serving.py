"""Chaos scenarios for the inference server under concurrent load: a worker killed (-9), Redis
stopped / restarted / frozen / resumed (the serving benchmark's fault phases), and DynamoDB
throttling through a fault-injecting client (a botocore ``before-call`` hook on a moto table).

Each scenario returns rows of figures: requests, 5xx, connection errors, the levels that
answered; the bounds are judged by :mod:`benchmarks.chaos` (counts, never seconds).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serving_fault import fault_test
from benchmarks.serving_http import encode_post, run_load
from benchmarks.serving_quality import register_fallback
from benchmarks.serving_setup import NOW, VERSION, free_port, item_features, settings_for, start, stop
from benchmarks.serving_store import seed_items

TRAIN_ROWS = 4000
REPLACEMENT_WAIT_S = 60.0  # how long the supervisor may take to start a killed worker's replacement
# The worker-kill scenario judges a process death, not the store guards (the Redis phases do). On a
# loaded 2-core host (`make test`: two pytest workers, the replacement worker importing) store reads
# can outlast the deployed 30 ms store timeout, five in a row open the worker's circuit breaker, and
# a worker whose item snapshot is still seeding can then answer only with the rule: seen once in
# ~3,800 answers (the likely path; its log was not kept). Its servers get the rehearsal's loaded-host
# budget and store timeout (rankops/rehearse/session.py); the bound stays "every answer from a model".


@dataclass
class World:
    """A home with a champion and a fallback model, items, and request bodies."""

    home: Path
    items: list[str]
    values: np.ndarray
    bodies: list[bytes]


def make_world(folder: Path, items: int = 2000, candidates: int = 50) -> World:
    from benchmarks.serving_setup import train_and_register

    home = folder / "home"
    settings = settings_for(home)
    train_and_register(settings, 30, TRAIN_ROWS)
    register_fallback(settings, TRAIN_ROWS)
    ids = [f"i-{k}" for k in range(items)]
    values = item_features(items, 3)
    rng = np.random.default_rng(4)
    picks = [rng.choice(items, candidates, replace=False) for _ in range(32)]
    bodies = [json.dumps({"user_id": f"u-{k}", "context": {"category": "toys"}, "ts": NOW,
                          "candidates": [ids[i] for i in p]}).encode() for k, p in enumerate(picks)]  # fmt: skip
    return World(home, ids, values, bodies)


def _answers(bodies: list[bytes]) -> dict[str, int]:
    return dict(Counter(json.loads(b)["variant"] for b in bodies if b.startswith(b"{")))


def _row(scenario: str, result: Any, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "requests": len(result.latencies_s) + result.errors,
        "server_5xx": sum(v for k, v in result.statuses.items() if k >= 500),
        "connection_errors": result.errors,
        "answered_by": _answers(result.bodies),
        **extra,
    }


def _workers(pid: int) -> list[int]:
    """The uvicorn supervisor's worker processes (its children, not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [p for p in pids if b"resource_tracker" not in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return b"resource_tracker"


def worker_kill(world: World, folder: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    """Two workers on the embedded store; one is SIGKILLed while clients send requests."""
    from rankops.features.online.embedded import EmbeddedStore

    store = EmbeddedStore(world.home / "online" / "features.sqlite")
    seed_items(store, world.items, world.values, VERSION)
    store.close()
    port = free_port()
    rankops = str(Path(sys.executable).parent / "rankops")
    command = [rankops, "--home", str(world.home), "serve", "--port", str(port), "--workers", "2"]
    from rankops.rehearse.session import LOADED_HOST_ENVIRONMENT

    env = {**os.environ, **LOADED_HOST_ENVIRONMENT}
    server = start(command, port, folder / "workers.log", env=env)
    raws = [encode_post("/invocations", b) for b in world.bodies]
    try:
        outcome: dict[str, Any] = {}
        load = threading.Thread(
            target=lambda: outcome.update(result=run_load("127.0.0.1", port, raws, concurrency, seconds=seconds,
                                                          keep_bodies=True)))  # fmt: skip
        before = _workers(server.pid)
        load.start()
        load.join(seconds / 3)  # a third into the load: both workers are serving
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        load.join()
        # the event waited for: the supervisor's replacement worker (a loaded machine starts it slowly)
        while time.monotonic() - killed_at < REPLACEMENT_WAIT_S:
            workers_after = _workers(server.pid)
            if victim not in workers_after and len(workers_after) == 2:
                break
            time.sleep(0.1)
        replaced_after_s = round(time.monotonic() - killed_at, 1)
        after = run_load("127.0.0.1", port, raws, concurrency, count=20, keep_bodies=True)
        workers_after = _workers(server.pid)
    finally:
        stop(server)
    return _row(
        "kill -9 of a serving worker (2 workers)",
        outcome["result"],
        killed_workers=1,
        workers_after=len(workers_after),
        worker_replaced=victim not in workers_after and len(workers_after) == 2,
        replaced_within_s=replaced_after_s,
        after_kill=_row("after", after),
    )


def redis_faults(world: World, folder: Path, seconds: float, concurrency: int) -> list[dict[str, Any]]:
    """The serving benchmark's fault phases on a private redis-server, one row per phase."""
    fault = fault_test(world.home, folder, world.items, world.values, world.bodies, seconds, concurrency, TRAIN_ROWS)
    rows = [
        {
            "scenario": phase["phase"],
            "requests": phase["n"] + phase["connection_errors"],
            "server_5xx": phase["server_5xx"],
            "connection_errors": phase["connection_errors"],
            "answered_by": phase["answered_by"],
            "ndcg_at_10": phase["ndcg_at_10"],
        }
        for phase in fault["phases"]
    ]
    rows[0]["outage_ndcg_ratio"] = fault["outage_ndcg_ratio"]
    return rows


def dynamodb_throttling(world: World, requests: int, threads: int, every: int = 3) -> dict[str, Any]:
    """In-process ranking on a DynamoDB store (moto) whose client throttles every ``every``-th read."""
    from moto import mock_aws

    from rankops.features.online.dynamodb import DynamoDBConfig, DynamoDBStore, make_dynamodb
    from rankops.serving.schema import parse_request
    from rankops.serving.server import build_server

    os.environ.update({"AWS_ACCESS_KEY_ID": "chaos", "AWS_SECRET_ACCESS_KEY": "chaos"})  # moto's, never real
    settings = settings_for(world.home)
    # moto answers in-process, slower than DynamoDB under a loaded machine: generous timeouts, so only
    # the injected throttling fails reads (the breaker and budget are exercised by the Redis phases)
    serving_cfg = settings.serving.model_copy(update={"store_timeout_ms": 5000, "latency_budget_ms": 20_000})
    settings = settings.model_copy(update={"serving": serving_cfg})
    with mock_aws():
        cfg = DynamoDBConfig(table="chaos-features", region="eu-west-1")
        DynamoDBStore(make_dynamodb(cfg), cfg).create_table()
        seed_items(DynamoDBStore(make_dynamodb(cfg), cfg, recheck_seconds=0), world.items, world.values, VERSION)
        serving = DynamoDBStore(make_dynamodb(cfg, serving_timeout_s=5.0), cfg, read_rounds=1)
        calls = Counter[str]()

        class _Response:  # what botocore reads of an HTTP response before raising the error
            status_code = 400

        def throttle(**_: Any) -> Any:
            if calls["warm"]:
                return None
            calls["reads"] += 1
            if calls["reads"] % every:
                return None
            calls["throttled"] += 1
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "chaos: throttled"}
            return _Response(), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

        serving.client.meta.events.register("before-call.dynamodb.BatchGetItem", throttle)
        ranker = build_server(settings, stores={"item": serving}).ranker
        parsed = [parse_request(b, "application/json", 1000, 10**7) for b in world.bodies]
        calls["warm"] = 1  # traffic before the throttling starts
        warm = Counter(ranker.rank(p)["variant"] for p in parsed)
        calls["warm"] = 0
        answers: Counter[str] = Counter()
        failures: list[BaseException] = []
        lock = threading.Lock()

        def client(offset: int) -> None:
            for k in range(requests // threads):
                try:
                    variant = ranker.rank(parsed[(offset + k) % len(parsed)])["variant"]
                except BaseException as err:  # a raise would be a 5xx
                    failures.append(err)
                    continue
                with lock:
                    answers[variant] += 1

        pool = [threading.Thread(target=client, args=(7 * t,)) for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return {
        "scenario": f"DynamoDB throttling (every {every}rd read)",
        "requests": (requests // threads) * threads,
        "server_5xx": len(failures),
        "connection_errors": 0,
        "answered_by": dict(answers),
        "throttled_reads": calls["throttled"],
        "before_throttling": dict(warm),
    }
