"""Smoke run of the serving benchmark at a tiny size: every part runs and the JSON has
the documented shape (speed targets are judged by the full run, never here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks import machine
from tests.conftest import REPO


def test_serving_benchmark_quick_run() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RANKOPS_")}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.serving", "--quick"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    latency = {"n", "p50_ms", "p95_ms", "p99_ms"}
    recorded, here = report["config"]["machine"], machine.describe()  # this machine, whatever its architecture
    assert {k: recorded[k] for k in ("cpus", "cpu_model")} == {k: here[k] for k in ("cpus", "cpu_model")}
    assert (recorded["cpu_mhz"] is None) == (here["cpu_mhz"] is None) and (recorded["cpu_mhz"] or 1) > 0
    assert set(report["floor"]) == {"redis_mget", "predict", "total"}
    assert all(latency <= set(v) for v in report["floor"].values())
    assert set(report["compiled_in_process"]) == {"redis_mget", "predict", "total"}
    # the server's model is the compiled one, and its scores are LightGBM's (the run asserts it too)
    assert report["parity"]["engine"] == "lleaves" and report["model"]["compile_error"] is None
    assert report["parity"]["max_abs_diff"] <= 1e-9 and report["parity"]["http"]["max_abs_diff"] <= 1e-9
    assert report["model"]["compiled_object_bytes"] > 0 and report["model"]["compile_seconds"] > 0
    assert set(report["rankops_in_process"]) == {"redis", "embedded"}
    assert set(report["rankops_http"]) == {"redis", "embedded", "inline"}
    for part in (*report["rankops_http"].values(), report["mlflow_serve_inline"]):
        assert latency <= set(part) and part["status"] == {"200": part["n"]}
    assert latency <= set(report["redis_then_mlflow_chained"])
    # the same load with the local feedback log and on a server without it (as a SageMaker
    # container), in alternating blocks: each block's figure is reported, the total is all of them
    from benchmarks.serving import LOAD_BLOCKS

    for load in (report["load"], report["load_without_feedback_log"]):
        assert load["requests"] > 0 and set(load["status"]) == {"200"} and load["requests_per_cpu_s"] > 0
        blocks = load["blocks_requests_per_cpu_s"]
        assert len(blocks) == LOAD_BLOCKS and min(blocks) <= load["requests_per_cpu_s"] <= max(blocks)
    container = report["targets"]["requests_per_cpu_s_without_feedback_log"]
    assert container == report["load_without_feedback_log"]["requests_per_cpu_s"]
    fault = report["fault"]
    phases = [p["phase"] for p in fault["phases"]]
    assert phases == ["normal", "redis stopped", "redis restarted", "redis frozen", "redis resumed"]
    assert fault["zero_5xx"] and fault["fallback_counter_rose"]
    assert fault["phases"][1]["fallback_share"] == 1.0, "with Redis stopped every answer says it fell back"
    # ... and a model answered it, ranking from the item snapshot: better than the input order
    assert fault["outage_answered_by_a_model"], [p["answered_by"] for p in fault["phases"]]
    floor_ratio = fault["input_order_ndcg_at_10"] / fault["champion_ndcg_at_10"]
    assert all(r > floor_ratio for r in fault["outage_ndcg_ratio"].values()), fault["outage_ndcg_ratio"]
    assert {"outage_ndcg_ratio", "outage_ndcg_ratio_ok"} <= set(report["targets"])
    assert set(report["targets"]) >= {"p50_vs_floor", "p99_vs_floor", "p50_below_mlflow_inline", "p50_vs_chained",
                                      "requests_per_cpu_s", "zero_5xx", "engine", "scores_within_1e-9"}  # fmt: skip
