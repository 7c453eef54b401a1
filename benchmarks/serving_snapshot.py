"""The item snapshot's cost (rankops.serving.snapshot): memory per million items and what it
adds to a request, JSON on stdout.

Fills a snapshot with the default columns (the default fallback model's and the rule's stored
inputs) for ``--items`` items with 13-character ids, as the server's reads would, and reports
the process's resident memory growth scaled to a million items; then the per-request cost of
``observe`` (every successful read) and ``fill`` (outage only) for 100 candidates, beside a
``np.column_stack`` of the same columns as a same-run yardstick.

    python -m benchmarks.serving_snapshot            # 1,000,000 items
    python -m benchmarks.serving_snapshot --quick    # 100,000 items
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable

import numpy as np


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def per_call_us(call: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return round((time.perf_counter() - started) / repeat * 1e6, 2)


def main(argv: list[str] | None = None) -> int:
    from rankops.config_sections import FallbackConfig
    from rankops.serving.snapshot import for_fallback_levels
    from rankops.training.train import fallback_features

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 items")
    parser.add_argument("--items", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    items = 100_000 if args.quick else args.items
    inputs = fallback_features(FallbackConfig())
    batch = 1000
    columns = for_fallback_levels(1, inputs).columns  # type: ignore[union-attr]
    values = {c: np.random.default_rng(0).random(batch) for c in columns}
    found = np.ones(batch, dtype=bool)
    gc.collect()
    before = resident_bytes()
    snapshot = for_fallback_levels(items, inputs)
    assert snapshot is not None
    for lo in range(0, items, batch):
        snapshot.observe([f"item-{k:08d}" for k in range(lo, lo + batch)], values, found)
    gc.collect()
    grown = resident_bytes() - before
    request = [f"item-{k:08d}" for k in range(100)]
    hundred = {c: v[:100] for c, v in values.items()}
    report = {
        "items": len(snapshot),
        "columns": columns,
        "resident_mb_per_million_items": round(grown / len(snapshot) * 1e6 / 1e6, 1),
        "values_mb_per_million_items": round(8 * len(columns), 1),
        "observe_us_per_request": per_call_us(lambda: snapshot.observe(request, hundred, found[:100]), 20_000),
        "fill_us_per_request": per_call_us(lambda: snapshot.fill(request, columns), 20_000),
        "column_stack_us_same_run": per_call_us(lambda: np.column_stack([hundred[c] for c in columns]), 20_000),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
