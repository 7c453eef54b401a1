"""The serving benchmark's fault test: a private redis-server stopped, restarted and frozen
under load (never the shared one): zero 5xx, the fallback counter rises, the champion returns."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serving_http import encode_post, run_load
from benchmarks.serving_setup import VERSION, free_port, percentiles, start, stop
from benchmarks.serving_store import PrivateRedis, redis_store, seed_items


def fallback_count(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("rankops_fallback_total"))


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
