"""The feature benchmarks run at a tiny size and print the JSON their readers expect."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks import features_spark
from tests.conftest import REPO


def test_online_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.features_online", "--entities", "500", "--reads", "60", "--batch", "20"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["history_rows"]["item"] == 500 * out["history_rows_per_key"] == 500 * 20, "materialized from history"
    assert out["latest_values_item_s"] > 0 and out["latest_values_history_scan_item_s"] > 0
    assert out["latest_values_from"] == "snapshot", "materialized from the published latest snapshot"
    for store in ("embedded", "redis"):
        assert out[store]["materialize_rows_per_s"] > 0
        for path in ("read_item_features", "fetch_items_all_entities"):
            assert 0 < out[store][path]["p50_ms"] <= out[store][path]["p99_ms"]
    assert out["peer_bare_mget"]["p50_ms"] > 0 and out["peer_naive_per_key_set_rows_per_s"] > 0
    assert out["peer_server_ceiling_set_rows_per_s"] > 0 and out["peer_server_ceiling_hset_rows_per_s"] > 0
    assert out["peer_bare_hmget"]["p50_ms"] > 0
    assert set(out["ratios"]) >= {"redis_read_vs_bare_mget_p50", "redis_materialize_vs_naive_set"}
    targets = out["targets"]
    assert set(targets) >= {"all_entities_read_vs_bare_mget_p50", "redis_materialize_rows_per_s"}
    assert targets["fetch_items_round_trips"] == 1, "every entity of the candidates in one read"
    assert out["machine"]["cpus"] == os.cpu_count() and out["machine"]["cpu_model"], "says which machine"
    assert out["embedded"]["fetch_items_round_trips"] == 1


def test_spark_benchmark_reports_throughput(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = features_spark.run(events=3_000, days=2, home=tmp_path)
    json.dumps(out)
    assert out["events"] == 3_000 and out["events_per_second"] > 0
    assert out["rows"]["item"] > 0 and out["target_met"] is None, "too small to judge the 5M target"
