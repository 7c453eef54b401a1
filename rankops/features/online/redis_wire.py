"""The Redis wire protocol (RESP) pieces the store writes and reads with itself: pipelined ``SET``s
encoded column-wise, ``MGET`` encoded once, and replies to pipelined writes counted off the socket.
redis-py's own packing and parsing cost more per row than Redis's work on them (docs/features.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa


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
    key_column = keys if isinstance(keys, pa.Array) else pa.array(keys, pa.string())
    names = pc.binary_join_element_wise(base, key_column.cast(pa.binary()), b"")
    values = payloads if isinstance(payloads, pa.Array) else pa.array(payloads, pa.binary())

    def length(column: pa.Array) -> pa.Array:
        return pc.binary_length(column).cast(pa.string()).cast(pa.binary())

    parts = [b"*5\r\n$3\r\nSET\r\n$", length(names), b"\r\n", names, b"\r\n$", length(values), b"\r\n", values]
    parts.append(b"\r\n$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl_b), ttl_b))
    commands = pc.binary_join_element_wise(*parts, b"")
    if commands.null_count:
        raise ValueError("a key or value to write is missing (None)")
    _, offsets, data = commands.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[[commands.offset, commands.offset + len(commands)]]
    return memoryview(data)[int(bounds[0]) : int(bounds[1])]


def encode_mget(names: list[str]) -> bytes:
    """RESP encoding of ``MGET <names...>``: one string built and encoded once when every name is
    ASCII (then characters are bytes, so ``len`` gives the bulk lengths), else name by name."""
    text = "".join([f"${len(n)}\r\n{n}\r\n" for n in names])
    if text.isascii():
        return b"*%d\r\n$4\r\nMGET\r\n" % (len(names) + 1) + text.encode()
    parts = [b"*%d\r\n$4\r\nMGET\r\n" % (len(names) + 1)]
    for name in names:
        raw = name.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class Replies:
    """Counts the replies of pipelined ``SET``s straight off the connection's socket: each is one
    line (``+OK`` or ``-ERR ...``), so counting line ends replaces a parser call per reply (the
    cost that dominated pipelined writes). Error lines are kept to report."""

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
            if complete.count(b"+OK\r\n") != lines:
                failed = [line for line in complete.split(b"\r\n") if line[:1] == b"-"]
                self.errors += [line[1:].decode(errors="replace") for line in failed]
            self.received += lines

    def finish(self, expected: int) -> None:
        """Read every reply to ``expected`` writes; more (or a partial line) means the stream is out of step."""
        self.read_until(expected)
        if self.received != expected or self.tail:
            raise ConnectionError(f"redis sent {self.received} replies to {expected} writes")
