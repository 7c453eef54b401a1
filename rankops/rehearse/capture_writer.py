"""The endpoint emulator's data capture, written in batches as SageMaker writes it.

A real endpoint does not put one S3 object per invocation: its capture agent buffers the records
on the instance (AWS, "Capture data from real-time endpoint",
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html: capture
stops at high disk usage, so records wait on the instance's disk) and uploads JSON Lines files,
many invocations each, in hourly folders
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`` (the same page's "view
captured data"; NVIDIA's AIPerf guide to replaying SageMaker capture,
https://docs.nvidia.com/aiperf/tutorials/datasets-inputs/replay-sage-maker-data-capture-traces,
"Data Capture writes JSONL files to S3, partitioned by hour"). How often SageMaker uploads is not
documented in what we found; files appear within minutes. So the emulator writes a file per flush:

* a buffer per (destination, endpoint, variant), flushed when the next line's hour folder differs
  from the buffer's (a file never straddles an hour), when it holds ``max_lines``, and every
  ``flush_s`` emulated seconds from a daemon thread (:class:`rankops.rehearse.clock.Clock`:
  ``flush_s * factor`` real seconds);
* the object key is :func:`rankops.monitoring.data_capture.capture_key` of the buffer's first
  line's time, so the file sits in that line's hour folder;
* :meth:`CaptureWriter.flush` writes every buffer and returns once every batch taken before it
  is in S3 (a rehearsal calls it where it reads capture right after sending traffic);
  :meth:`CaptureWriter.close` stops the timer and flushes.

What a reader sees is therefore what it sees in AWS: fewer, bigger files, the newest ``flush_s``
of capture not yet written.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rankops.monitoring.data_capture import capture_key

FLUSH_S = 30.0  # emulated seconds between timed flushes (0.3 s real at the rehearsal's 0.01)
MAX_LINES = 500  # lines per file before a flush


def hour_folder(when: datetime) -> datetime:
    """The start of the UTC hour whose folder a capture line written at ``when`` goes to."""
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class _Buffer:
    first: datetime  # the first line's time: the file's key
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Batch:
    bucket: str
    key: str
    body: bytes


class CaptureWriter:
    """Buffers capture lines per (destination, endpoint, variant) and writes one ``.jsonl`` object
    per flush (see the module docstring); safe to call from any number of threads."""

    def __init__(self, s3: Any, factor: float, flush_s: float = FLUSH_S, max_lines: int = MAX_LINES) -> None:
        if flush_s <= 0 or max_lines < 1:
            raise ValueError(f"flush_s must be > 0 and max_lines >= 1, not {flush_s}, {max_lines}")
        self._s3, self._max = s3, max_lines
        self._buffers: dict[tuple[str, str, str], _Buffer] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when no batch is being written
        self._writing = 0
        self._stop = threading.Event()
        self._failed: Exception | None = None  # a timed write's error, raised by the next flush()
        self.objects = 0  # objects written, for tests and the report
        self._timer = threading.Thread(target=self._tick, args=(flush_s * factor,), daemon=True, name="capture-writer")
        self._timer.start()

    def add(self, destination: str, endpoint: str, variant: str, when: datetime, line: str) -> None:
        """Buffer one capture line (no newline) captured at ``when``; may write a full or closed-hour file."""
        where = (destination, endpoint, variant)
        with self._lock:
            buffer = self._buffers.get(where)
            batches = []
            if buffer is not None and hour_folder(buffer.first) != hour_folder(when):
                batches.append(self._take(where))  # a file never straddles an hour
                buffer = None
            if buffer is None:
                buffer = self._buffers[where] = _Buffer(when)
            buffer.lines.append(line)
            if len(buffer.lines) >= self._max:
                batches.append(self._take(where))
            self._writing += len(batches)
        self._write(batches)

    def flush(self) -> int:
        """Write every buffer; returns when every batch taken so far is in S3 (objects written now).
        Raises if a timed write failed since the last flush: its lines are lost."""
        written = self._flush_all()
        failed, self._failed = self._failed, None
        if failed is not None:
            raise RuntimeError(f"data capture lines were lost: a timed write failed: {failed}") from failed
        return written

    def _flush_all(self) -> int:
        with self._lock:
            batches = [self._take(where) for where in list(self._buffers)]
            self._writing += len(batches)
        self._write(batches)
        with self._idle:
            self._idle.wait_for(lambda: self._writing == 0)
        return len(batches)

    def close(self) -> None:
        """Stop the timer and write what is buffered."""
        self._stop.set()
        self._timer.join(timeout=10)
        self.flush()

    def _take(self, where: tuple[str, str, str]) -> _Batch:
        """The buffer of ``where`` as a batch to write, removed (call with the lock held)."""
        buffer = self._buffers.pop(where)
        uri = capture_key(where[0], where[1], where[2], buffer.first)
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return _Batch(bucket, key, "".join(f"{line}\n" for line in buffer.lines).encode())

    def _write(self, batches: list[_Batch]) -> None:
        try:
            for batch in batches:
                self._s3.put_object(Bucket=batch.bucket, Key=batch.key, Body=batch.body)
                with self._lock:
                    self.objects += 1
        finally:
            with self._idle:
                self._writing -= len(batches)
                self._idle.notify_all()

    def _tick(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self._flush_all()
            except Exception as err:  # the timer lives on; the next flush() raises it
                self._failed = self._failed or err
