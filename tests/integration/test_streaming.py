"""The streaming feature job against real Spark, a real file source and a real store: every
window's stored value equals a batch recomputation over the same events (parity), late events
are counted and kept, malformed ones quarantined, and a ``kill -9`` mid-run followed by a
restart from the checkpoint loses and double-counts nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rankops import stream_events
from rankops.errors import LakeError
from rankops.features import streaming
from rankops.features.online.embedded import EmbeddedStore
from rankops.features.stream_guard import Guard

T0 = 1_764_000_000_000  # a fixed event-time origin (ms)
SPEC = stream_events.StreamSpec(items=40, sellers=6)
REPO = Path(__file__).resolve().parents[2]


def feed(lake, cfg, files: int, per_file: int = 150, minutes: int = 10) -> list[pa.Table]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    out = []
    landed = time.time() - files  # files land in event-time order, a second apart: Spark's file source
    for i in range(files):  # orders new files by (millisecond) modification time, and ties are arbitrary
        start = T0 + i * minutes * 60_000
        table = stream_events.events(SPEC, rng, per_file, start, start + minutes * 60_000)
        uri = stream_events.publish(lake, cfg.source, table, stream_events.file_name(start, i))
        os.utime(uri, (landed + i, landed + i))
        out.append(table)
    return out


def stores_for(path: Path) -> dict[str, EmbeddedStore]:
    store = EmbeddedStore(path)
    return {streaming.namespace(e, w): store for e, w, _ in streaming.groups()}


def assert_parity(spark, settings, stores, events: pa.Table) -> int:  # type: ignore[no-untyped-def]
    """Every window of the batch recomputation is in the store with the same bytes; returns
    how many windows were compared."""
    expected = streaming.recompute(spark, events, settings)
    compared = 0
    for ns, values in expected.items():
        keys = sorted(values)
        got = stores[ns].read(ns, keys)
        wrong = [k for k, g in zip(keys, got, strict=True) if g != values[k]]
        assert not wrong, f"{ns}: {len(wrong)} of {len(keys)} windows differ, e.g. {wrong[:3]}"
        compared += len(keys)
    return compared


def test_stream_equals_batch_and_sets_aside_late_and_malformed(spark, settings, lake, home) -> None:  # type: ignore[no-untyped-def]
    cfg = streaming.StreamConfig.from_lake(lake)
    on_time = feed(lake, cfg, files=3)
    stores = stores_for(home / "online.sqlite")
    streaming.run(spark, lake, settings, cfg, stores)  # one micro-batch: the watermark is 28 min in
    late = stream_events.events(SPEC, np.random.default_rng(9), 7, T0, T0 + 60_000)  # older than that
    bad = stream_events.events(SPEC, np.random.default_rng(10), 3, T0 + 1_700_000, T0 + 1_700_100)
    bad = bad.set_column(2, "item_id", pa.array([None, "", "i-1"])).set_column(
        5, "clicked", pa.array([True, True, None])
    )
    stream_events.publish(lake, cfg.source, pa.concat_tables([late, bad]), stream_events.file_name(T0 + 1_800_000, 3))
    streaming.run(spark, lake, settings, cfg, stores)  # the next micro-batch, from the checkpoint

    record = Guard(lake, cfg.folder, 0).latest()
    assert record is not None
    assert (record.total_accepted, record.total_late, record.total_quarantined) == (450, 7, 3)
    assert record.reasons == {"missing clicked flag": 1, "missing item_id": 2}
    kept = pq.read_table(f"{cfg.folder}/late").sort_by("ts")
    assert kept["ts"].to_pylist() == late.sort_by("ts")["ts"].to_pylist()  # counted and kept, not lost
    assert set(pq.read_table(f"{cfg.folder}/quarantine")["reason"].to_pylist()) == set(record.reasons)
    assert assert_parity(spark, settings, stores, pa.concat_tables(on_time)) > 100
    # the late events really are outside the stored values
    with_late = streaming.recompute(spark, pa.concat_tables([*on_time, late]), settings)
    ns = streaming.namespace("item", min(streaming.windows()))
    keys = sorted(with_late[ns])
    assert any(g != with_late[ns][k] for k, g in zip(keys, stores[ns].read(ns, keys), strict=True))


def test_a_replayed_micro_batch_changes_nothing(spark, settings, home) -> None:  # type: ignore[no-untyped-def]
    events = stream_events.events(SPEC, np.random.default_rng(4), 300, T0, T0 + 1_800_000)
    stores = stores_for(home / "online.sqlite")
    for entity, window, feats in streaming.groups():
        streaming.ensure_live(stores[streaming.namespace(entity, window)], streaming.namespace(entity, window), feats)
    window = max(streaming.windows())
    batch = streaming.window_counts(spark.createDataFrame(events.to_pandas()), window)
    write = streaming.window_writer(window, stores, settings, streaming.Progress())
    ns = streaming.namespace("item", window)
    expected = streaming.recompute(spark, events, settings)[ns]
    keys = sorted(expected)
    write(batch, 0)
    first = stores[ns].read(ns, keys)
    write(batch, 0)  # Spark calls the sink again with the same batch after a crash
    assert stores[ns].read(ns, keys) == first == [expected[k] for k in keys]


def test_a_missing_source_is_a_one_line_error(lake) -> None:  # type: ignore[no-untyped-def]
    cfg = streaming.StreamConfig.from_lake(lake)
    with pytest.raises(LakeError, match=r"stream source .* does not exist") as err:
        streaming.check_source(lake, cfg)
    assert "\n" not in str(err.value)


def _wait_for(predicate, what: str, proc: subprocess.Popen | None, limit_s: float = 300) -> None:  # type: ignore[type-arg,no-untyped-def]
    deadline = time.monotonic() + limit_s  # a bound for a hung job, not a speed assertion
    while not predicate():
        assert proc is None or proc.poll() is None, f"the job exited early ({proc.returncode}) waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} after {limit_s} s"
        time.sleep(0.5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_kill_9_then_restart_loses_and_double_counts_nothing(spark, settings, lake, home) -> None:  # type: ignore[no-untyped-def]
    cfg = streaming.StreamConfig.from_lake(lake, max_files_per_trigger=1)
    tables = feed(lake, cfg, files=5, per_file=100)
    held = Path(cfg.folder).parent / "held"  # two files fed while the job runs (outside the source)
    held.mkdir(parents=True)
    for name in sorted(Path(cfg.source).iterdir())[3:]:
        name.rename(held / name.name)
    env = {**os.environ, "RANKOPS_SPARK__MASTER": "local[2]", "RANKOPS_SPARK__DRIVER_MEMORY": "1g"}
    env["PYTHONPATH"] = str(REPO)
    job = [sys.executable, str(REPO / "emr_jobs" / "stream_features.py"), "--home", str(home), "--for", "600"]
    # its own process group: the job is the Python driver *and* the JVM it launched, killed together as a
    # crashed container would be (a JVM left running would keep writing the checkpoint)
    proc = subprocess.Popen(
        [*job, "--trigger-s", "1", "--max-files-per-trigger", "1"], env=env, cwd=REPO, start_new_session=True
    )
    guard = Guard(lake, cfg.folder, 0)
    try:
        window_commits = Path(cfg.folder) / "checkpoints" / f"window_{int(max(streaming.windows()).total_seconds())}s"
        _wait_for(lambda: (window_commits / "commits" / "0").exists(), "a first window batch", proc)
        for name in sorted(held.iterdir()):
            name.rename(Path(cfg.source) / name.name)
        _wait_for(lambda: lake.exists(guard.record_uri(3)), "the guard taking a new file", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # mid-run: windows of the new files not yet (all) written
        proc.wait()
        _wait_for(lambda: not _group_alive(proc.pid), "the killed job's JVM to be gone", None)

    stores = stores_for(settings.home / "online" / "features.sqlite")
    rest = streaming.StreamConfig.from_lake(lake)  # the rest in one micro-batch (options may change)
    progress = streaming.run(spark, lake, settings, rest, stores)  # restart from the checkpoint, to the end

    assert progress.values_written > 0, "the kill left nothing for the restart: it was not mid-run"
    events = pa.concat_tables(tables)
    final = guard.latest()
    assert final is not None and (final.total_accepted, final.total_late) == (events.num_rows, 0)
    assert assert_parity(spark, settings, stores, events) > 100
