"""The Redis wire protocol (RESP) pieces the store writes and reads with itself: pipelined ``SET``s
and multi-field ``HSET``s encoded column-wise, a read command (``MGET``/``HMGET``) encoded once,
and the one-line replies to pipelined writes counted off the socket. redis-py's own packing and
parsing cost more per row than Redis's work on them (docs/features.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa


def _rows(parts: list[Any]) -> pa.BinaryArray:
    """One binary array whose row ``i`` joins ``parts`` (bytes, or Arrow columns taken at row ``i``)."""
    import pyarrow.compute as pc

    rows = pc.binary_join_element_wise(*parts, b"")
    if rows.null_count:
        raise ValueError("a key or value to write is missing (None)")
    return rows


def _binary(column: Sequence[str] | Sequence[bytes] | pa.Array, kind: pa.DataType) -> pa.Array:
    import pyarrow as pa

    array = column if isinstance(column, pa.Array) else pa.array(column, kind)
    return array.cast(pa.binary())


def _length(column: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_length(column).cast(pa.string()).cast(pa.binary())


def _data(rows: pa.BinaryArray, lo: int = 0, hi: int | None = None) -> memoryview:
    """The bytes of rows ``lo`` to ``hi`` (default: all), back to back, without a copy."""
    _, offsets, data = rows.buffers()
    hi = len(rows) if hi is None else hi
    bounds = np.frombuffer(offsets, dtype=np.int32)[[rows.offset + lo, rows.offset + hi]]
    return memoryview(data)[int(bounds[0]) : int(bounds[1])]


def encode_sets(
    base: bytes, keys: Sequence[str] | pa.Array, payloads: Sequence[bytes] | pa.Array, ttl: int
) -> bytes | memoryview:
    """RESP encoding of ``SET <base><key> <payload> EX <ttl>`` for every row, built column-wise
    with Arrow's element-wise string kernels (no per-row Python): the result is the values
    buffer of one binary array, i.e. the commands back to back. ``keys`` and ``payloads`` may be
    Arrow arrays already (materialization passes them so, skipping a round trip through Python objects)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(keys):
        return b""
    ttl_b = str(ttl).encode()
    names = pc.binary_join_element_wise(base, _binary(keys, pa.string()), b"")
    values = _binary(payloads, pa.binary())
    tail = b"\r\n$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl_b), ttl_b)
    head = b"*5\r\n$3\r\nSET\r\n$"
    return _data(_rows([head, _length(names), b"\r\n", names, b"\r\n$", _length(values), b"\r\n", values, tail]))


def encode_hsets(
    key: bytes, fields: Sequence[str] | pa.Array, payloads: Sequence[bytes] | pa.Array, per_command: int
) -> tuple[list[bytes | memoryview], int]:
    """RESP encoding of ``HSET <key> <field> <payload> ...`` for every row, ``per_command`` fields
    to a command (one command holds the server for its whole run, so it is kept short), built
    column-wise as :func:`encode_sets` is. Returns the wire pieces and how many commands they hold."""
    import pyarrow as pa

    n = len(fields)
    if not n:
        return [], 0
    names, values = _binary(fields, pa.string()), _binary(payloads, pa.binary())
    pairs = _rows([b"$", _length(names), b"\r\n", names, b"\r\n$", _length(values), b"\r\n", values, b"\r\n"])
    head = b"$%d\r\n%s\r\n" % (len(key), key)
    wire: list[bytes | memoryview] = []
    for lo in range(0, n, per_command):
        hi = min(n, lo + per_command)
        wire += [b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * (hi - lo)) + head, _data(pairs, lo, hi)]
    return wire, len(wire) // 2


def encode_command(verb: bytes, args: list[str]) -> bytes:
    """RESP encoding of ``<verb> <args...>`` (``MGET`` names, ``HMGET`` key fields): one string
    built and encoded once when every argument is ASCII (then characters are bytes, so ``len``
    gives the bulk lengths), else argument by argument."""
    head = b"*%d\r\n$%d\r\n%s\r\n" % (len(args) + 1, len(verb), verb)
    text = "".join([f"${len(a)}\r\n{a}\r\n" for a in args])
    if text.isascii():
        return head + text.encode()
    parts = [head]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class Replies:
    """Counts the replies of pipelined writes straight off the connection's socket: each is one
    line (``+OK``, ``:<n>`` or ``-ERR ...``), so counting line ends replaces a parser call per
    reply (the cost that dominated pipelined writes). Error lines are kept to report."""

    def __init__(self, conn: Any) -> None:
        if conn._sock is None:  # redis-py connects lazily
            conn.connect()
        self.sock = conn._sock
        self.received = 0
        self.tail = b""
        self.errors: list[str] = []

    def read_until(self, expected: int) -> None:
        while self.received < expected:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("redis closed the connection while replying to writes")
            data = self.tail + data
            cut = data.rfind(b"\r\n") + 2
            complete, self.tail = data[:cut], data[cut:]
            lines = complete.count(b"\r\n")
            if complete[:1] == b"-" or b"\r\n-" in complete:
                failed = [line for line in complete.split(b"\r\n") if line[:1] == b"-"]
                self.errors += [line[1:].decode(errors="replace") for line in failed]
            self.received += lines

    def finish(self, expected: int) -> None:
        """Read every reply to ``expected`` writes; more (or a partial line) means the stream is out of step."""
        self.read_until(expected)
        if self.received != expected or self.tail:
            raise ConnectionError(f"redis sent {self.received} replies to {expected} writes")
