"""Chaos scenarios for what is written: a writer killed (-9) in the middle of a lake commit and
in the middle of a materialization, then what readers see (never a partial write).

Each crash runs the real writer in a child process (``python -m benchmarks.chaos_data --child
...``) that reports its progress on stdout; the parent kills it with SIGKILL at a progress point
(materialization: after its first batch of a new version; lake: at a random moment of a write,
staging or commit), then reads what a reader would and checks it is one complete write, and that
the next write succeeds (a crashed writer leaves no lock or half-state behind).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks.serving_setup import REPO

WRITER_LEASE_S = 2  # the suite's Redis writer lease: a killed writer blocks the next run this long
LAKE_ROWS = 200_000  # per write: big enough that a random kill often lands inside one
PARTITION = {"dt": "2026-11-01"}


def _lake(root: Path) -> Any:
    from rankops.lake import ZONES, Lake

    return Lake({z: str(root / z) for z in ZONES})


def _written(run: int, rows: int) -> pa.Table:
    return pa.table({"x": np.arange(rows, dtype=np.int64) + run * rows, "run": np.full(rows, run, dtype=np.int64)})


def _child(argv: list[str]) -> None:
    """The writer: lake writes in a loop, or one materialization of a new version."""
    kind, target = argv[0], argv[1:]
    if kind == "lake":
        lake, rows = _lake(Path(target[0])), int(target[1])
        for run in range(1, 10**6):
            print(f"writing {run}", flush=True)
            lake.write_partition("raw", "events", PARTITION, _written(run, rows), run_id=f"w{run}")
            print(f"committed {run}", flush=True)
        return
    store, version, rows = _store(target[0], target[1]), target[2], int(target[3])

    class Reporting:  # the real store, reporting each batch it wrote
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def write_batch(self, *args: Any) -> None:
            store.write_batch(*args)
            print("batch", flush=True)

    _materialize(Reporting(), version, rows)  # type: ignore[arg-type]
    print("activated", flush=True)


def _store(kind: str, where: str) -> Any:
    if kind == "embedded":
        from rankops.features.online.embedded import EmbeddedStore

        return EmbeddedStore(where, recheck_seconds=0)
    from benchmarks.serving_store import redis_store

    url, prefix = where.rsplit("|", 1)
    return redis_store(url, prefix, 2000, recheck_seconds=0, writer_lease_seconds=WRITER_LEASE_S)


def _values(version: str, rows: int) -> np.ndarray:
    """Every value of a version is its number: a mixed read shows at once."""
    from rankops.features import registry

    return np.full((rows, len(registry.stored_names("item"))), float(version.lstrip("v")))


def _materialize(store: Any, version: str, rows: int, batch: int = 500) -> None:
    from rankops.features import registry
    from rankops.features.materialize import Rows, write_version

    keys = [f"i-{k}" for k in range(rows)]
    write_version(store, "item", version, Rows(keys, _values(version, rows), []), batch)
    for entity in registry.joined_entities("item"):
        store.activate(entity, version, registry.stored_names(entity), [])


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.chaos_data", "--child", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip


def _kill_at(proc: subprocess.Popen[str], line: str, skip: int = 0) -> bool:
    """SIGKILL the child once it printed ``line`` (after ``skip`` earlier ones); False if it ended first."""
    assert proc.stdout is not None
    seen = 0
    for got in proc.stdout:
        if got.strip() == line:
            if seen >= skip:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            seen += 1
    proc.wait()
    return False


def lake_commit_crash(folder: Path, crashes: int, rows: int = LAKE_ROWS) -> dict[str, Any]:
    """Kill a lake writer at random moments of a write; every read is one whole write."""
    lake = _lake(folder / "lake")
    lake.write_partition("raw", "events", PARTITION, _written(0, rows), run_id="w0")
    rng = random.Random(7)
    out = {"scenario": "kill -9 in a lake commit", "crashes": 0, "reads": 0, "partial_reads": 0,
           "failed_reads": 0, "writes_after_crash_ok": 0}  # fmt: skip
    for _ in range(crashes):
        proc = _spawn("lake", str(folder / "lake"), str(rows))
        assert proc.stdout is not None
        proc.stdout.readline()  # "writing 1": the writer is inside its first write
        time.sleep(rng.random() * 0.5)  # a random point of it (staging, commit); the figures count outcomes
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        out["crashes"] += 1
        out.update(_check_lake(lake, rows, out))
        lake.write_partition("raw", "events", PARTITION, _written(0, rows), run_id="w0")
        out["writes_after_crash_ok"] += 1
    out["ok"] = out["partial_reads"] == 0 and out["failed_reads"] == 0 and out["writes_after_crash_ok"] == crashes
    return out


def _check_lake(lake: Any, rows: int, out: dict[str, Any]) -> dict[str, Any]:
    out["reads"] += 1
    try:
        table = lake.read("raw", "events", columns=["x", "run"])
    except Exception:  # every failed read is counted
        out["failed_reads"] += 1
        return out
    runs = set(table["run"].to_pylist())
    if table.num_rows != rows or len(runs) != 1:
        out["partial_reads"] += 1
    return out


def materialization_crash(folder: Path, kind: str, where: str, crashes: int, rows: int) -> dict[str, Any]:
    """Kill a materialization after its first batch: readers keep the previous, whole version."""
    store = _store(kind, where)
    _materialize(store, "v1", rows)
    out = {"scenario": f"kill -9 in a materialization ({kind})", "crashes": 0, "reads": 0, "partial_reads": 0,
           "failed_reads": 0, "writes_after_crash_ok": 0, "next_run_refused_by_dead_writer_lease": 0,
           "waited_for_dead_writer_lease_s": 0.0}  # fmt: skip
    live = 1
    for attempt in range(crashes):
        version = f"v{2 + 2 * attempt}"
        killed = _kill_at(_spawn("materialize", kind, where, version, str(rows)), "batch")
        out["crashes"] += int(killed)
        live = _check_version(store, rows, live, out)
        _next_run(store, f"v{3 + 2 * attempt}", rows, out)
        live = _check_version(store, rows, 3 + 2 * attempt, out)
        out["writes_after_crash_ok"] += int(live == 3 + 2 * attempt)
    store.close()
    out["ok"] = (out["crashes"] == crashes and out["partial_reads"] == 0 and out["failed_reads"] == 0
                 and out["writes_after_crash_ok"] == crashes)  # fmt: skip
    return out


def _next_run(store: Any, version: str, rows: int, out: dict[str, Any]) -> None:
    """The next materialization. A killed Redis writer leaves its writer lease, which lapses
    ``WRITER_LEASE_S`` after its last write: until then the next run is refused with an error that
    says so; it is retried (counted, with the wait) until the lease lapsed, then it completes."""
    from rankops.errors import StoreError

    started = time.monotonic()
    while True:
        try:
            _materialize(store, version, rows)
            break
        except StoreError as err:
            if "a writer that died frees it" not in str(err) or time.monotonic() - started > 10 * WRITER_LEASE_S:
                raise
            out["next_run_refused_by_dead_writer_lease"] += 1
            time.sleep(0.1)
    out["waited_for_dead_writer_lease_s"] = max(
        out["waited_for_dead_writer_lease_s"], round(time.monotonic() - started, 2)
    )


def _check_version(store: Any, rows: int, expected: int, out: dict[str, Any]) -> int:
    """Read every key as the server does: all of the expected version, or a partial read counted."""
    from rankops.features import registry
    from rankops.features.online.packing import unpack_rows

    out["reads"] += 1
    try:
        active = store.active_version("item")
        payloads = store.read_many({"item": [f"i-{k}" for k in range(rows)]})["item"]
        width = len(registry.stored_names("item"))
        matrix, found, _ = unpack_rows(payloads, width, np.zeros(width), active.version, 0)
    except Exception:  # every failed read is counted
        out["failed_reads"] += 1
        return expected
    if active.version != f"v{expected}" or not found.all() or not (matrix == expected).all():
        out["partial_reads"] += 1
    return expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
    return 0


if __name__ == "__main__":
    sys.exit(main())
