"""Redis (ElastiCache) online store: a materialized version is one hash, written with
multi-field ``HSET``s; values upserted one by one (streaming windows) are string keys with
their own TTL; one round trip per batch read; an atomic version switch.

Keys::

    <prefix>:<entity>:active          JSON ActiveVersion (version, columns, joins, slot, layout)
    <prefix>:<entity>:<slot>          layout ``hash``: field <id> -> packed value (8-byte version tag +
                                      float64s + join keys); the hash has the TTL
    <prefix>:<entity>:<slot>:<id>     layout ``keys``: the packed value, with its own TTL
    <prefix>:<entity>:lock            the writing version while a materialization runs (a renewed lease,
                                      :mod:`rankops.features.online.lease`)

Versions alternate between two *slots* (``a``/``b``, blue/green): a new version is written
to the slot readers are not using, then one ``SET`` of the pointer switches them over. The
previous version stays intact for a rollback until the next run.

Materialization (:meth:`RedisStore.write_stream`) writes the ``hash`` layout: it first
``UNLINK``s the slot's old hash (freed in Redis's background thread), so memory stays bounded at
two copies and a deleted entity never comes back, and one ``HSET`` stores a thousand values
where ``SET … EX`` needed a command each: the redis-server does about twice the rows per second
(docs/features.md). The hash's TTL (renewed as it is written) bounds how long a version may be
served if materialization stops. The streaming job's windows (:meth:`RedisStore.write_live`,
``write_batch``) are the ``keys`` layout, because each window value must expire on its own
and Redis 7.1 (ElastiCache) has no per-field TTL; a key left by an older version is rejected by
its version tag. Readers follow the pointer's ``layout`` (``HMGET`` or ``MGET``), every entity
of a request in one round trip. The hash lives on one shard: this store assumes cluster mode
disabled, as cross-key ``MGET`` always did (``infra/constructs/online_stores.py``: one node group).

The client is injected (``make_redis`` builds one from config with short socket
timeouts and no retries), so a slow or dead server becomes a ``StoreError`` in
about ``socket_timeout_ms``, never a hang.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

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
from rankops.features.online.redis_auth import auth_token
from rankops.features.online.redis_wire import Replies, encode_command, encode_hsets, encode_sets

if TYPE_CHECKING:
    import pyarrow as pa
    import redis

    Chunk = tuple[Sequence[str] | pa.Array, Sequence[bytes] | pa.Array]  # keys, packed values
    Encoder = Callable[[Any, Any], tuple[list[bytes | memoryview], int]]  # a part -> wire pieces, commands


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
    hash_fields: int = Field(1_000, gt=0)  # values per HSET: one command holds the server ~1 ms
    writer_lease_seconds: int = Field(LEASE_SECONDS, ge=1)  # a dead materialization blocks the next this long


SLOTS = ("a", "b")
# What this store expects of its server (the ElastiCache parameter group, infra/constructs/online_stores.py;
# the rehearsal's stand-in runs with the template's): a version's hash that expires is freed in Redis's
# background thread, as an UNLINKed one is, not in the command loop (seconds for a large catalogue).
SERVER_PARAMETERS = {"lazyfree-lazy-expire": "yes"}
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


class RedisStore:
    kind = name = "redis"
    worst_call_s = 0.0  # on the serving path: the longest one call may take (0: not bounded here)

    def __init__(self, client: redis.Redis, cfg: RedisConfig, recheck_seconds: float = 1.0) -> None:
        self.client = client
        self.cfg = cfg
        self.prefix = cfg.key_prefix
        self._pointers = PointerCache(self._load_active, recheck_seconds)
        self._writing: dict[tuple[str, str], str] = {}
        self._hashed: set[tuple[str, str]] = set()  # versions being written as one hash (write_stream)
        self._leases = LeaseClock(cfg.writer_lease_seconds)
        self._readers: list[Any] = []  # connections held between reads (_reader)
        self._pid = os.getpid()

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
        if (entity, version) in self._hashed:
            raise StoreError(f"{entity!r} version {version} is being written as one hash, not key by key")
        base = f"{self._base(entity)}:{self._slot_for(entity, version)}:".encode()
        self._call("write", self._send, self._renewing(entity, version, [(keys, payloads)]), self._sets(base, ttl_s))

    def write_stream(self, entity: str, version: str, chunks: Iterable[Chunk], ttl_s: int | None = None) -> None:
        """A whole version as one hash (layout ``hash``), every ``(keys, payloads)`` chunk on one
        connection without a pause between chunks: the caller's iterator makes chunk k+1
        (materialization packs it then) while Redis executes chunk k; only the last replies are
        waited for at the end. The version's first write ``UNLINK``s the slot's old hash. Keys and
        payloads may be Arrow arrays. Returns once every write is acknowledged; an error reply fails it all."""
        key = f"{self._base(entity)}:{self._slot_for(entity, version)}"
        if (entity, version) not in self._hashed:  # the slot's old version: nobody reads it
            self._call("write", self.client.unlink, key)
            self._hashed.add((entity, version))
        self._call("write", self._send, self._renewing(entity, version, chunks), self._hsets(key.encode(), ttl_s))

    def _renewing(self, entity: str, version: str, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """``chunks``, renewing the writer lease between them (a long stream keeps it, or stops if it lost it)."""
        for chunk in chunks:
            self._slot_for(entity, version)
            yield chunk

    def _sets(self, base: bytes, ttl_s: int | None) -> Encoder:
        ttl = ttl_s or self.cfg.ttl_seconds

        def encode(keys: Any, payloads: Any) -> tuple[list[bytes | memoryview], int]:
            return [encode_sets(base, keys, payloads, ttl)], len(keys)

        return encode

    def _hsets(self, key: bytes, ttl_s: int | None) -> Encoder:
        expire = encode_command(b"EXPIRE", [key.decode(), str(ttl_s or self.cfg.ttl_seconds)])

        def encode(keys: Any, payloads: Any) -> tuple[list[bytes | memoryview], int]:
            wire, commands = encode_hsets(key, keys, payloads, self.cfg.hash_fields)
            return [*wire, expire], commands + 1  # the TTL renewed as the hash grows

        return encode

    def write_live(
        self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
    ) -> None:
        """Upsert into the live version in place (see :func:`base.write_into_live`): a version
        written key by key (the streaming namespaces); a hash cannot give each value its own TTL."""
        active = self._load_active(entity)
        if active is not None and active.layout == "hash":
            raise StoreError(f"{entity!r} version {active.version} is stored as one hash; live writes go key by key")
        write_into_live(self, entity, version, keys, payloads, ttl_s)

    def _send(self, chunks: Iterable[Chunk], encode: Encoder) -> None:
        """Every chunk, ``pipeline_rows`` at a time, encoded by ``encode`` into commands."""
        import redis as redis_lib

        step = self.cfg.pipeline_rows
        conn = self.client.connection_pool.get_connection()
        try:
            replies = Replies(conn)
            sent = 0
            for keys, payloads in chunks:
                if len(keys) != len(payloads):
                    raise ValueError(f"{len(keys)} keys for {len(payloads)} values")
                for lo in range(0, len(keys), step):
                    wire, commands = encode(keys[lo : lo + step], payloads[lo : lo + step])
                    conn.send_packed_command(wire, check_health=False)
                    replies.read_until(sent)  # the previous part's replies, while Redis runs this one
                    sent += commands
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
        layout = "hash" if (entity, version) in self._hashed else "keys"
        pointer = ActiveVersion(version, columns, joins, slot, layout).to_json()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(f"{self._base(entity)}:active", pointer)
        pipe.delete(f"{self._base(entity)}:lock")
        self._call("activate", pipe.execute)
        self._writing.pop((entity, version), None)
        self._hashed.discard((entity, version))
        self._leases.forget(entity, version)
        self._pointers.forget(entity)

    def abort(self, entity: str, version: str) -> None:
        """Give up a version that will not be activated: frees its hash (nobody reads that slot)
        and releases the writer lock, while this version still holds it."""
        self._leases.forget(entity, version)
        hashed = (entity, version) in self._hashed
        self._hashed.discard((entity, version))
        slot = self._writing.pop((entity, version), None)
        if slot is not None:
            lock = f"{self._base(entity)}:lock"
            if self._call("abort", self.client.get, lock) == version.encode():
                if hashed:
                    self._call("abort", self.client.unlink, f"{self._base(entity)}:{slot}")
                self._call("abort", self.client.delete, lock)

    # -- reads -------------------------------------------------------------------------------
    def _load_active(self, entity: str) -> ActiveVersion | None:
        raw = self._call("read", self.client.get, f"{self._base(entity)}:active")
        return ActiveVersion.from_json(raw) if raw is not None else None

    def active_version(self, entity: str) -> ActiveVersion | None:
        return self._pointers.get(entity)

    def read_many(self, requests: Mapping[str, list[str]]) -> dict[str, list[bytes | None]]:
        """Every requested key of every entity in one round trip: an ``HMGET`` per entity stored
        as a hash, one ``MGET`` for the entities stored key by key."""
        commands: list[tuple[bytes, list[str]]] = []
        spans: list[tuple[str, int, int, int]] = []  # entity, command, first and last argument
        names: list[str] = []
        out: dict[str, list[bytes | None]] = {}
        for entity, keys in requests.items():
            active = self.active_version(entity)
            if active is None or not keys:
                out[entity] = [None] * len(keys)
            elif active.layout == "hash":
                spans.append((entity, len(commands), 1, 1 + len(keys)))
                commands.append((b"HMGET", [f"{self._base(entity)}:{active.slot}", *keys]))
            else:
                base = f"{self._base(entity)}:{active.slot}:"
                spans.append((entity, -1, len(names), len(names) + len(keys)))
                names.extend([base + k for k in keys])
        if names:
            commands.append((b"MGET", names))
        if commands:
            replies = self._call("read", self._fetch, commands)
            for entity, at, lo, hi in spans:
                values = replies[at]
                out[entity] = values[lo:hi] if at == -1 else values
        return out

    def _fetch(self, commands: list[tuple[bytes, list[str]]]) -> list[list[bytes | None]]:
        """The replies to ``commands`` (each ``MGET``/``HMGET``: one value per name), encoded here
        (:func:`encode_command`) and sent together on a connection this store holds between reads
        (:meth:`_reader`): redis-py's generic packing and its pool's per-call bookkeeping were ~10% of
        a ranking request's CPU. Any failure drops the connection (its stream may be out of step)
        back to the pool, which reconnects it."""
        import redis as redis_lib

        conn = self._reader()
        try:
            wire = [encode_command(verb, args) for verb, args in commands]
            conn.send_packed_command([wire[0] if len(wire) == 1 else b"".join(wire)], check_health=False)
            replies = [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()
            self.client.connection_pool.release(conn)
            raise
        self._readers.append(conn)
        for (verb, args), values in zip(commands, replies, strict=True):
            wanted = len(args) - (verb == b"HMGET")
            if not isinstance(values, list) or len(values) != wanted:
                raise redis_lib.ResponseError(f"{verb.decode()} of {wanted} values answered {type(values).__name__}")
        return replies

    def _reader(self) -> Any:
        """A connection for one read: one this store holds (taken from the pool once, so closing the
        client still closes it), checked as the pool checks it (reconnected if the server closed it
        or it holds unread data). Thread-safe: list pop/append are atomic; a forked child drops
        its parent's connections."""
        import redis as redis_lib

        if self._pid != os.getpid():
            self._readers, self._pid = [], os.getpid()
        try:
            conn = self._readers.pop()
        except IndexError:
            return self.client.connection_pool.get_connection()  # connected and checked by the pool
        try:
            stale = conn.can_read()
        except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError):
            stale = True
        if stale:
            conn.disconnect()
            try:
                conn.connect()
            except BaseException:
                self.client.connection_pool.release(conn)
                raise
        return conn

    def read(self, entity: str, keys: list[str]) -> list[bytes | None]:
        return self.read_many({entity: keys})[entity]

    def close(self) -> None:
        readers, self._readers = self._readers, []
        for conn in readers:
            self.client.connection_pool.release(conn)
        self.client.close()


def connect(cfg: RedisConfig, options: OpenOptions) -> RedisStore:
    """A store over a new client built by :func:`make_redis`."""
    store = RedisStore(
        make_redis(cfg, options.for_writes, options.serving_timeout_s), cfg, recheck_seconds=options.recheck_seconds
    )
    store.worst_call_s = serving_worst_call_s((cfg.connect_timeout_ms, cfg.socket_timeout_ms), options)
    return store
