"""Redis (ElastiCache) online store: one string key per entity, pipelined writes,
one ``MGET`` per batch read, TTLs, and an atomic version switch.

Keys::

    <prefix>:<entity>:active          JSON ActiveVersion (version, columns, joins, slot)
    <prefix>:<entity>:<slot>:<id>     packed value (8-byte version tag + float64s + join keys), with TTL
    <prefix>:<entity>:lock            the writing version while a materialization runs (a renewed lease,
                                      :mod:`rankops.features.online.lease`)

Versions alternate between two key *slots* (``a``/``b``, blue/green): a new
materialization writes the slot readers are not using, then one ``SET`` of the
pointer switches them over. Memory stays bounded at two copies without scanning
for old keys, the previous version stays intact for a rollback until the next
run, and a key left in the slot by an older version is rejected by its version
tag (it reads as missing), so deleted entities never come back. TTLs bound how
long a value may be served if materialization stops.

The client is injected (``make_redis`` builds one from config with short socket
timeouts and no retries), so a slow or dead server becomes a ``StoreError`` in
about ``socket_timeout_ms``, never a hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from rankops.errors import StoreError
from rankops.features.online.base import (
    ActiveVersion,
    OpenOptions,
    PointerCache,
    StoreSettings,
    serving_worst_call_s,
    write_into_live,
)
from rankops.features.online.lease import LEASE_SECONDS, LeaseClock

if TYPE_CHECKING:
    import redis


class RedisConfig(StoreSettings):
    """``[online_store.redis]``: ElastiCache / Redis. Timeouts are short on purpose: the server
    falls back rather than wait (a store error surfaces as ``StoreError``)."""

    type: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS (ElastiCache in transit encryption)
    auth_secret_arn: str | None = None  # Secrets Manager secret holding the AUTH token (ElastiCache)
    key_prefix: str = "rankops"
    ttl_seconds: int = Field(7 * 24 * 3600, gt=0)
    socket_timeout_ms: int = Field(50, gt=0)
    connect_timeout_ms: int = Field(200, gt=0)
    write_timeout_ms: int = Field(5_000, gt=0)  # materialization pipelines are large
    pipeline_rows: int = Field(10_000, gt=0)
    writer_lease_seconds: int = Field(LEASE_SECONDS, ge=1)  # a dead materialization blocks the next this long


SLOTS = ("a", "b")
# take the lease when it is free, renew it when this version holds it; else name the holder
_ACQUIRE = """local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return '' end
return v"""
# renew only what this version still holds (a lapsed or taken lease is not taken back)
_RENEW = """local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) return '' end
return v or false"""


def make_redis(cfg: RedisConfig, for_writes: bool = False, serving_timeout_s: float | None = None) -> redis.Redis:
    """A client with the configured timeouts and no automatic retries (the caller
    decides: the server falls back, the materializer fails and leaves the old version).
    ``serving_timeout_s`` caps the connect and read timeouts (the inference server's budget)."""
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from rankops.features.online.base import capped

    timeout_ms = cfg.write_timeout_ms if for_writes else cfg.socket_timeout_ms
    extra = {"password": auth_token(cfg.auth_secret_arn)} if cfg.auth_secret_arn else {}
    try:
        return redis_lib.Redis.from_url(
            cfg.url,
            socket_timeout=capped(timeout_ms, serving_timeout_s),
            socket_connect_timeout=capped(cfg.connect_timeout_ms, serving_timeout_s),
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            **extra,
        )
    except ValueError as err:  # redis-py's URL parsing: a bad scheme, port or database
        raise StoreError(f"online_store.redis.url {redacted(cfg.url)!r} is not a Redis URL: {err}") from err


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for an error message)."""
    from rankops.redaction import redact_url

    return redact_url(url)


def auth_token(secret_arn: str, client: Any = None) -> str:
    """ElastiCache's AUTH token from Secrets Manager (read when a client is made, never at import).
    The secret is either the bare token or JSON with a ``password`` or ``token`` field."""
    import json

    import boto3

    try:
        value = (client or boto3.client("secretsmanager")).get_secret_value(SecretId=secret_arn)["SecretString"]
    except Exception as err:  # any client error: say which secret, and stop (no unauthenticated retry)
        raise StoreError(f"cannot read the Redis AUTH token from {secret_arn}: {err}") from err
    try:
        doc = json.loads(value)
    except json.JSONDecodeError:
        return str(value)
    return str(doc.get("password") or doc.get("token") or value) if isinstance(doc, dict) else str(value)


def encode_sets(base: bytes, keys: list[str], payloads: list[bytes], ttl: int) -> bytes | memoryview:
    """RESP encoding of ``SET <base><key> <payload> EX <ttl>`` for every row, built column-wise
    with Arrow's element-wise string kernels (no per-row Python): the result is the values
    buffer of one binary array, i.e. the commands back to back."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not keys:
        return b""
    ttl_b = str(ttl).encode()
    names = pc.binary_join_element_wise(base, pa.array(keys, pa.string()).cast(pa.binary()), b"")
    values = pa.array(payloads, pa.binary())

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


class RedisStore:
    kind = name = "redis"
    worst_call_s = 0.0  # on the serving path: the longest one call may take (0: not bounded here)

    def __init__(self, client: redis.Redis, cfg: RedisConfig, recheck_seconds: float = 1.0) -> None:
        self.client = client
        self.cfg = cfg
        self.prefix = cfg.key_prefix
        self._pointers = PointerCache(self._load_active, recheck_seconds)
        self._writing: dict[tuple[str, str], str] = {}
        self._leases = LeaseClock(cfg.writer_lease_seconds)

    # -- keys --------------------------------------------------------------------------------
    def _base(self, entity: str) -> str:
        return f"{self.prefix}:{entity}"

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        import redis as redis_lib

        try:
            return fn(*args)
        except (redis_lib.RedisError, OSError) as err:
            message = f"redis {what} failed ({self.cfg.url}): {type(err).__name__}: {err}"
            raise StoreError(redacted(message)) from err

    # -- writes ------------------------------------------------------------------------------
    def _slot_for(self, entity: str, version: str) -> str:
        """The slot a version writes to: the one readers are not using. Taken under a writer
        lease (renewed while writing) so two materializations never write the same slot."""
        lock = f"{self._base(entity)}:lock"
        slot = self._writing.get((entity, version))
        if slot is not None:
            if self._leases.due(entity, version):
                holder = self._call("lock", self.client.eval, _RENEW, 1, lock, version, self._leases.lease_s)
                if holder != b"":
                    raise StoreError(self._leases.lapsed("redis", entity, version, holder.decode() if holder else None))
                self._leases.held(entity, version)
            return slot
        holder = self._call("lock", self.client.eval, _ACQUIRE, 1, lock, version, self._leases.lease_s)
        if holder != b"":
            raise StoreError(self._leases.held_by_other("redis", entity, holder.decode()))
        self._leases.held(entity, version)
        active = self._load_active(entity)
        slot = SLOTS[1] if active is not None and active.slot == SLOTS[0] else SLOTS[0]
        self._writing[(entity, version)] = slot
        return slot

    def write_batch(
        self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
    ) -> None:
        """Pipelined ``SET key value EX ttl``: the commands are encoded column-wise straight to the
        wire protocol (:func:`encode_sets`) and sent ``pipeline_rows`` at a time, the next chunk
        going out before the previous one's replies are read, so encoding here and executing in
        Redis overlap. Any error reply fails the batch (after every reply was read). ``ttl_s`` overrides the
        batch TTL (streaming windows expire after window + freshness SLA)."""
        if len(keys) != len(payloads):
            raise ValueError(f"{len(keys)} keys for {len(payloads)} values")
        base = f"{self._base(entity)}:{self._slot_for(entity, version)}:".encode()
        self._call("write", self._send, base, keys, payloads, ttl_s or self.cfg.ttl_seconds)

    def write_live(
        self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
    ) -> None:
        """Upsert into the live version in place (see :func:`base.write_into_live`)."""
        write_into_live(self, entity, version, keys, payloads, ttl_s)

    def _send(self, base: bytes, keys: list[str], payloads: list[bytes], ttl: int) -> None:
        import redis as redis_lib

        step = self.cfg.pipeline_rows
        conn = self.client.connection_pool.get_connection()
        try:
            replies = Replies(conn)
            sent = 0
            for lo in range(0, len(keys), step):
                chunk = encode_sets(base, keys[lo : lo + step], payloads[lo : lo + step], ttl)
                conn.send_packed_command([chunk], check_health=False)
                replies.read_until(sent)  # the previous chunk's replies, while Redis runs this one
                sent += min(step, len(keys) - lo)
            replies.finish(sent)
            if replies.errors:
                raise redis_lib.ResponseError(f"{len(replies.errors)} writes failed, first: {replies.errors[0]}")
        except BaseException:
            conn.disconnect()
            raise
        finally:
            self.client.connection_pool.release(conn)

    def activate(self, entity: str, version: str, columns: list[str], joins: list[str]) -> None:
        slot = self._slot_for(entity, version)
        pointer = ActiveVersion(version, columns, joins, slot).to_json()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(f"{self._base(entity)}:active", pointer)
        pipe.delete(f"{self._base(entity)}:lock")
        self._call("activate", pipe.execute)
        self._writing.pop((entity, version), None)
        self._leases.forget(entity, version)
        self._pointers.forget(entity)

    def abort(self, entity: str, version: str) -> None:
        """Give up a version that will not be activated (releases the writer lock)."""
        self._leases.forget(entity, version)
        if self._writing.pop((entity, version), None) is not None:
            lock = f"{self._base(entity)}:lock"
            if self._call("abort", self.client.get, lock) == version.encode():
                self._call("abort", self.client.delete, lock)

    # -- reads -------------------------------------------------------------------------------
    def _load_active(self, entity: str) -> ActiveVersion | None:
        raw = self._call("read", self.client.get, f"{self._base(entity)}:active")
        return ActiveVersion.from_json(raw) if raw is not None else None

    def active_version(self, entity: str) -> ActiveVersion | None:
        return self._pointers.get(entity)

    def read_many(self, requests: Mapping[str, list[str]]) -> dict[str, list[bytes | None]]:
        """One ``MGET`` for every requested key of every entity."""
        names: list[str] = []
        spans: list[tuple[str, int, int]] = []
        out: dict[str, list[bytes | None]] = {}
        for entity, keys in requests.items():
            active = self.active_version(entity)
            if active is None or not keys:
                out[entity] = [None] * len(keys)
                continue
            base = f"{self._base(entity)}:{active.slot}:"
            spans.append((entity, len(names), len(names) + len(keys)))
            names.extend([base + k for k in keys])
        if names:
            values = self._call("read", self.client.mget, names)
            for entity, lo, hi in spans:
                out[entity] = values[lo:hi]
        return out

    def read(self, entity: str, keys: list[str]) -> list[bytes | None]:
        return self.read_many({entity: keys})[entity]

    def close(self) -> None:
        self.client.close()


def connect(cfg: RedisConfig, options: OpenOptions) -> RedisStore:
    """A store over a new client built by :func:`make_redis`."""
    store = RedisStore(
        make_redis(cfg, options.for_writes, options.serving_timeout_s), cfg, recheck_seconds=options.recheck_seconds
    )
    store.worst_call_s = serving_worst_call_s((cfg.connect_timeout_ms, cfg.socket_timeout_ms), options)
    return store
