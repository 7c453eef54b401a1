"""Two writers and one reader on one lake partition, at once (shared by the local and S3 tests)."""

import threading
from dataclasses import dataclass, field

import pyarrow as pa

from rankops.lake import Lake

PARTITION = {"dt": "2026-11-01"}
WRITES = 6
ROWS = 3


def written(writer: str, i: int) -> pa.Table:
    """Each write is recognisable: its run id on every row, a distinct x range."""
    base = (0 if writer == "a" else 1000) + 10 * i
    return pa.table({"x": list(range(base, base + ROWS)), "run": [f"{writer}-{i}"] * ROWS})


@dataclass
class Outcome:
    writer_errors: list[BaseException] = field(default_factory=list)
    failed_reads: list[BaseException] = field(default_factory=list)
    torn_reads: list[list[str]] = field(default_factory=list)
    reads: int = 0


def two_writers_and_a_reader(lake: Lake) -> Outcome:
    """Run both writers to completion while a reader reads the dataset in a loop.

    The reader stops once both writers have finished and it has read at least once after
    that (events, not a clock); every read must be one complete write."""
    lake.write_partition("raw", "events", PARTITION, written("a", -1), run_id="seed")
    outcome = Outcome()
    finished = [threading.Event(), threading.Event()]

    def write(writer: str, done: threading.Event) -> None:
        try:
            for i in range(WRITES):
                lake.write_partition("raw", "events", PARTITION, written(writer, i), run_id=f"{writer}-{i}")
        except BaseException as err:  # every writer failure is counted
            outcome.writer_errors.append(err)
        finally:
            done.set()

    def read() -> None:
        while True:
            last = all(e.is_set() for e in finished)
            try:
                table = lake.read("raw", "events", columns=["x", "run"])
                runs = sorted(set(table["run"].to_pylist()))
                if len(runs) != 1 or table.num_rows != ROWS:
                    outcome.torn_reads.append(runs)
            except Exception as err:  # every reader failure is counted
                outcome.failed_reads.append(err)
            outcome.reads += 1
            if last:
                return

    threads = [threading.Thread(target=write, args=(w, e)) for w, e in zip("ab", finished, strict=True)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


def final_write(lake: Lake) -> str:
    """The run id of the partition's final content, checked to be one whole write."""
    table = lake.read("raw", "events", columns=["x", "run"]).sort_by("x")
    runs = set(table["run"].to_pylist())
    assert len(runs) == 1, runs
    run = runs.pop()
    writer, i = run.split("-")
    assert table.equals(written(writer, int(i)).sort_by("x")), "the partition is one of the writes, byte for byte"
    return run
