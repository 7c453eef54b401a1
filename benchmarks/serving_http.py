"""A small keep-alive HTTP/1.1 load client on asyncio (benchmark support, not a benchmark).

Pre-encoded requests, one persistent connection per simulated client, responses
read by Content-Length: the client costs tens of microseconds per request, so the
figures measure the servers, not the client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.serving_setup import cpu_seconds, percentiles

SETTLE_S = 0.3  # after each load block, before its server's CPU is read (rankops.feedback.log.DRAIN_S is 0.05)


def encode_post(path: str, body: bytes, host: str = "127.0.0.1", content_type: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value.strip())
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            if size == 0:
                await self.reader.readline()
                return status, b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()

    def close(self) -> None:
        self.writer.close()


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0


async def _client(host: str, port: int, requests: list[bytes], stop_at: float, limit: int | None, out: LoadResult,
                  keep_bodies: bool, offset: int) -> None:  # fmt: skip
    conn: Connection | None = None
    sent = 0
    while time.perf_counter() < stop_at and (limit is None or sent < limit):
        raw = requests[(offset + sent) % len(requests)]
        sent += 1
        started = time.perf_counter()
        try:
            if conn is None:
                conn = await Connection.open(host, port)
            status, body = await conn.send(raw)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            out.errors += 1
            if conn is not None:
                conn.close()
            conn = None
            await asyncio.sleep(0.01)
            continue
        out.latencies_s.append(time.perf_counter() - started)
        out.statuses[status] = out.statuses.get(status, 0) + 1
        if keep_bodies:
            out.bodies.append(body)
    if conn is not None:
        conn.close()


def run_load(host: str, port: int, requests: list[bytes], concurrency: int = 1, seconds: float | None = None,
             count: int | None = None, keep_bodies: bool = False) -> LoadResult:  # fmt: skip
    """``concurrency`` clients sending back to back, for ``seconds`` or ``count`` requests each."""

    async def main() -> LoadResult:
        out = LoadResult()
        started = time.perf_counter()
        stop_at = started + (seconds if seconds is not None else 1e9)
        await asyncio.gather(
            *(_client(host, port, requests, stop_at, count, out, keep_bodies, k * 7) for k in range(concurrency))
        )
        out.elapsed_s = time.perf_counter() - started
        return out

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def loaded(pid: int, port: int, raws: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    """``concurrency`` keep-alive clients for ``seconds`` against the server ``pid``: status counts,
    throughput and requests per second of the server's CPU (all its threads)."""
    return alternating({"server": (pid, port)}, raws, concurrency, seconds, blocks=1)["server"]


def alternating(
    servers: dict[str, tuple[int, int]], raws: list[bytes], concurrency: int, seconds: float, blocks: int
) -> dict[str, dict[str, Any]]:
    """:func:`loaded` for each of ``servers`` (name -> (pid, port)), ``seconds`` each in all, in
    ``blocks`` alternating blocks (A, B, A, B, ...): servers compared this way see the same minutes
    of a shared machine, whose speed drifts by more than the difference measured between them.
    Each server's figure is its total requests over its total CPU; ``blocks_requests_per_cpu_s``
    gives the blocks' own figures, the spread."""
    totals = {name: (LoadResult(), [0.0], []) for name in servers}  # (load, cpu seconds, per-block figures)
    for _ in range(blocks):
        for name, (pid, port) in servers.items():
            cpu_before = cpu_seconds(pid)
            load = run_load("127.0.0.1", port, raws, concurrency, seconds=seconds / blocks)
            time.sleep(SETTLE_S)  # what the block queued (the feedback log's worker) is done and counted
            cpu = cpu_seconds(pid) - cpu_before
            total, spent, figures = totals[name]
            total.latencies_s += load.latencies_s
            total.errors += load.errors
            total.elapsed_s += load.elapsed_s
            for status, count in load.statuses.items():
                total.statuses[status] = total.statuses.get(status, 0) + count
            spent[0] += cpu
            figures.append(round(len(load.latencies_s) / cpu, 1) if cpu else None)
    return {name: _figures(load, spent[0], concurrency, figures) for name, (load, spent, figures) in totals.items()}


def _figures(load: LoadResult, cpu: float, concurrency: int, blocks: list[float | None]) -> dict[str, Any]:
    figures = {
        "seconds": round(load.elapsed_s, 2),
        "concurrency": concurrency,
        "requests": len(load.latencies_s),
        "status": load.statuses,
        "connection_errors": load.errors,
        "requests_per_s": round(len(load.latencies_s) / load.elapsed_s, 1),
        "server_cpu_s": round(cpu, 2),
        "requests_per_cpu_s": round(len(load.latencies_s) / cpu, 1) if cpu else None,
        "latency": percentiles(load.latencies_s),
    }
    if len(blocks) > 1:
        figures["blocks_requests_per_cpu_s"] = blocks
    return figures
