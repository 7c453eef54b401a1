"""The chaos suite (``make chaos``): faults under concurrent load, with figures and their bounds.

Scenarios: kill -9 of a serving worker; Redis stopped, restarted, frozen (SIGSTOP) and resumed
(private redis-servers only, never the shared one); DynamoDB throttling through a fault-injecting
client; kill -9 in the middle of a lake commit and of a materialization (embedded and Redis stores).
Figures: requests, 5xx, connection errors, the levels that answered, what readers see after each
crash. Bounds are counts, never seconds: zero 5xx everywhere; connection errors only where a
worker was killed, at most one per client (the requests in flight on it); every answer during a
store fault from a model (champion or fallback), the outage's NDCG@10 at least 0.85 of the
champion's; after every crash readers see one whole write, never a partial one, and the next write
succeeds. Exits 1 when a figure misses its bound. JSON on stdout, the table on stderr.

    python -m benchmarks.chaos            # the suite (a few minutes)
    python -m benchmarks.chaos --quick    # small sizes (run by the test suite)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import chaos_data, chaos_serving
from benchmarks.serving_fault import OUTAGES, TARGET_RATIO
from benchmarks.serving_store import PrivateRedis

MODELS = {"champion", "fallback"}


def bounds(row: dict[str, Any], clients: int) -> list[str]:
    """What this row misses (empty: every bound met)."""
    missed = []
    name = row["scenario"]
    if row.get("server_5xx", 0):
        missed.append(f"{row['server_5xx']} 5xx")
    killed = row.get("killed_workers", 0)
    if row.get("connection_errors", 0) > killed * clients:
        missed.append(f"{row['connection_errors']} connection errors (bound {killed * clients})")
    answered = set(row.get("answered_by", {}))
    if "answered_by" in row and not answered <= MODELS:
        missed.append(f"answered by {sorted(answered - MODELS)}")
    if name in OUTAGES and "fallback" not in answered:
        missed.append("no fallback-model answer in the outage")
    for outage, ratio in (row.get("outage_ndcg_ratio") or {}).items():
        if ratio is None or ratio < TARGET_RATIO:
            missed.append(f"{outage}: NDCG ratio {ratio} < {TARGET_RATIO}")
    if "worker_replaced" in row and not row["worker_replaced"]:
        missed.append("the killed worker was not replaced")
    if "after_kill" in row:
        missed += [f"after the kill: {m}" for m in bounds(row["after_kill"], clients)]
    if "throttled_reads" in row and not (row["throttled_reads"] and row["answered_by"].get("fallback")):
        missed.append("no throttled read answered by the fallback model")
    if "partial_reads" in row and not row["ok"]:
        missed.append(f"{row['partial_reads']} partial / {row['failed_reads']} failed reads, "
                      f"{row['writes_after_crash_ok']}/{row['crashes']} writes after a crash")  # fmt: skip
    return missed


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| scenario | requests | 5xx | conn. errors | answered by | after crashes | bounds |",
             "|---|---:|---:|---:|---|---|---|"]  # fmt: skip
    for r in rows:
        answered = ", ".join(f"{k} {v}" for k, v in sorted(r.get("answered_by", {}).items())) or "-"
        crash = "-"
        if "crashes" in r:
            crash = (f"{r['crashes']} crashes, {r['reads']} reads: {r['partial_reads']} partial, "
                     f"{r['failed_reads']} failed; next write ok {r['writes_after_crash_ok']}/{r['crashes']}"
                     + (f" (next run waited up to {r['waited_for_dead_writer_lease_s']} s for the dead writer's lease)"
                        if r.get("next_run_refused_by_dead_writer_lease") else ""))  # fmt: skip
        verdict = "; ".join(r["missed"]) or "met"
        lines.append(f"| {r['scenario']} | {r.get('requests', '-')} | {r.get('server_5xx', '-')} | "
                     f"{r.get('connection_errors', '-')} | {answered} | {crash} | {verdict} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: the test suite's run")
    parser.add_argument("--phase-seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--crashes", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.phase_seconds, args.clients, args.crashes = 1.5, 2, 2
    work = Path(tempfile.mkdtemp(prefix="rankops-chaos-"))
    redis = PrivateRedis(work / "redis-materialize")
    rows: list[dict[str, Any]] = []
    try:
        world = chaos_serving.make_world(work)
        rows.append(chaos_serving.worker_kill(world, work, 2 * args.phase_seconds, args.clients))
        rows += chaos_serving.redis_faults(world, work / "redis", args.phase_seconds, args.clients)
        rows.append(chaos_serving.dynamodb_throttling(world, 60 if args.quick else 600, args.clients))
        rows.append(chaos_data.lake_commit_crash(work / "lake", args.crashes))
        store_rows = 5000 if args.quick else 50_000
        rows.append(chaos_data.materialization_crash(work, "embedded", str(work / "m.sqlite"), args.crashes,
                                                     store_rows))  # fmt: skip
        redis.start()
        rows.append(chaos_data.materialization_crash(work, "redis", f"{redis.url}|rankops-chaos", args.crashes,
                                                     store_rows))  # fmt: skip
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        row["missed"] = bounds(row, args.clients)
    report = {"config": vars(args), "scenarios": rows, "all_bounds_met": not any(r["missed"] for r in rows)}
    print(json.dumps(report, indent=2))
    print(table(rows), file=sys.stderr)
    return 0 if report["all_bounds_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
