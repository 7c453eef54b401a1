"""The serving benchmark's fault test: a private redis-server stopped, restarted and frozen
under load (never the shared one): zero 5xx, the fallback counter rises, the champion returns.

Each phase also reports which level answered and NDCG@10 of its answers on the holdout
(:mod:`benchmarks.serving_quality`); ``outage_ndcg_ratio`` is the outage phases' NDCG over the
normal phase's (the champion's), with the fallback model registered as training registers it:
during the outage it ranks from the server's item snapshot (rankops.serving.snapshot), which
the server filled from its reads before the outage (one warm-up pass over the requests, so
the coverage never depends on how many requests a loaded machine fits into the normal phase)."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serving_http import encode_post, run_load
from benchmarks.serving_quality import holdout_relevance, ndcg_of, register_fallback
from benchmarks.serving_setup import VERSION, free_port, percentiles, settings_for, start, stop
from benchmarks.serving_store import PrivateRedis, redis_store, seed_items


def fallback_count(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("rankops_fallback_total"))


OUTAGES = ("redis stopped", "redis frozen")
TARGET_RATIO = 0.85  # issue 14: outage answers keep >= 85% of the champion's NDCG@10


def fault_test(home: Path, folder: Path, items: list[str], values: np.ndarray, bodies: list[bytes],
               phase_s: float, concurrency: int, train_rows: int = 20_000) -> dict[str, Any]:  # fmt: skip

    fallback_model = register_fallback(settings_for(home), train_rows)
    relevance = holdout_relevance(items, values)
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
    run_load("127.0.0.1", port, raws, concurrency=1, count=len(raws))  # traffic before the incident: each request once
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
            rankings = [[r["item_id"] for r in a["ranking"]] for a in answers]
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
                    "answered_by": dict(Counter(a["variant"] for a in answers)),
                    "ndcg_at_10": ndcg_of(rankings, relevance),
                }
            )
            counters[name] = fallback_count(port)
    finally:
        stop(server)
        private.stop()
    by_name = {p["phase"]: p for p in phases}
    normal = by_name["normal"]["ndcg_at_10"]
    input_order = ndcg_of([json.loads(b)["candidates"] for b in bodies], relevance)
    ratios = {name: round(by_name[name]["ndcg_at_10"] / normal, 4) if normal and by_name[name]["ndcg_at_10"] else None
              for name in OUTAGES}  # fmt: skip
    return {
        "fallback_model": fallback_model,
        "champion_ndcg_at_10": normal,
        "input_order_ndcg_at_10": input_order,
        "outage_ndcg_ratio": ratios,
        "outage_ndcg_ratio_ok": all(r is not None and r >= TARGET_RATIO for r in ratios.values()),
        "outage_answered_by_a_model": all(
            set(by_name[name]["answered_by"]) <= {"champion", "fallback"} for name in OUTAGES
        ),
        "phases": phases,
        "fallback_counter": counters,
        "zero_5xx": all(p["server_5xx"] == 0 and p["connection_errors"] == 0 for p in phases),
        "fallback_counter_rose": counters["redis stopped"] > counters["normal"],
        # recovered: once Redis is back, (almost) every answer in the second half of the phase is the champion's
        # again (a stray read timing out on a saturated machine still falls back, as it should)
        "recovered": phases[2]["fallback_share_second_half"] <= 0.01
        and phases[-1]["fallback_share_second_half"] <= 0.01,
    }
