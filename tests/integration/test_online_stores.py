"""One contract suite for every online store backend: the embedded SQLite store,
Redis (a real redis-server) and DynamoDB (moto). Plus each backend's own promises:
TTLs, writer locks, retries of unprocessed items, and timeouts that become
``StoreError`` quickly instead of hanging."""

from __future__ import annotations

import socket
import uuid
import weakref
from typing import Any

import numpy as np
import pytest

from rankops.errors import StoreError
from rankops.features.online.dynamodb import (
    TABLE_DEFINITION,
    TTL_ATTRIBUTE,
    DynamoDBConfig,
    DynamoDBStore,
    make_dynamodb,
)
from rankops.features.online.embedded import EmbeddedStore
from rankops.features.online.packing import pack_rows, unpack_rows
from rankops.features.online.redis import RedisConfig, RedisStore, make_redis
from tests.deployed import create_dynamodb_table, only_resource

COLUMNS = ["x", "y"]
BY_KEY: weakref.WeakSet[RedisStore] = weakref.WeakSet()  # Redis stores whose versions are written key by key


def redis_store(redis_target: Any, **overrides: Any) -> RedisStore:
    cfg = RedisConfig(url=redis_target.url, key_prefix=f"{redis_target.prefix}:{uuid.uuid4().hex[:6]}", **overrides)
    return RedisStore(make_redis(cfg), cfg, recheck_seconds=0)


@pytest.fixture
def stores_template(synthesized_env) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The online-stores stack as ``cdk synth`` renders it: every DynamoDB table below is built from it."""
    return synthesized_env("dev").template("online-stores")  # type: ignore[no-any-return]


def dynamodb_store(template: dict[str, Any], **overrides: Any) -> DynamoDBStore:
    """A store on a fresh moto table of the deployed shape (key schema, TTL, billing read from the
    synthesized ``template``; sellers live there in AWS)."""
    cfg = DynamoDBConfig(table=f"features-{uuid.uuid4().hex[:6]}", region="eu-west-1", **overrides)
    store = DynamoDBStore(make_dynamodb(cfg), cfg, recheck_seconds=0)
    create_dynamodb_table(store.client, template, cfg.table)
    return store


@pytest.fixture(params=["embedded", "redis", "redis_by_key", "dynamodb"])
def store(request, tmp_path, redis_target):  # type: ignore[no-untyped-def]
    """Every backend; Redis twice: versions written as materialization writes them (one hash per
    version, ``write_stream``) and key by key (``write_batch``, the streaming namespaces' layout)."""
    if request.param == "embedded":
        made: Any = EmbeddedStore(tmp_path / "s.sqlite", recheck_seconds=0)
    elif request.param.startswith("redis"):
        made = redis_store(redis_target)
        if request.param == "redis_by_key":
            BY_KEY.add(made)
    else:
        template = request.getfixturevalue("stores_template")
        request.getfixturevalue("aws")
        made = dynamodb_store(template)
    yield made
    made.close()


def write(store: Any, entity: str, version: str, rows: dict[str, list[float]], activate: bool = True) -> None:
    keys = list(rows)
    write_payloads(store, entity, version, keys, pack_rows(version, np.array([rows[k] for k in keys])))
    if activate:
        store.activate(entity, version, COLUMNS, [])


def write_payloads(store: Any, entity: str, version: str, keys: list[str], payloads: list[bytes]) -> None:
    """As materialization writes (Redis: one hash per version), or key by key (``BY_KEY``)."""
    if isinstance(store, RedisStore) and store not in BY_KEY:
        store.write_stream(entity, version, [(keys, payloads)])
    else:
        store.write_batch(entity, version, keys, payloads)


def values(store: Any, entity: str, keys: list[str]) -> tuple[list[list[float]], list[bool]]:
    active = store.active_version(entity)
    payloads = store.read_many({entity: keys})[entity]
    matrix, found, _ = unpack_rows(payloads, 2, np.array([-1.0, -1.0]), active.version if active else "")
    return matrix.tolist(), found.tolist()


# -- the contract, for every backend ---------------------------------------------------------
def test_nothing_is_visible_before_activation(store) -> None:  # type: ignore[no-untyped-def]
    assert store.active_version("item") is None
    assert store.read_many({"item": ["a"]}) == {"item": [None]}
    write(store, "item", "v1", {"a": [1.0, 2.0]}, activate=False)
    assert store.active_version("item") is None, "written but not activated: invisible"
    store.activate("item", "v1", COLUMNS, [])
    active = store.active_version("item")
    assert (active.version, active.columns, active.joins) == ("v1", COLUMNS, [])
    assert values(store, "item", ["a", "zz"]) == ([[1.0, 2.0], [-1.0, -1.0]], [True, False])


def test_versions_switch_atomically_and_deleted_keys_stay_deleted(store) -> None:  # type: ignore[no-untyped-def]
    write(store, "item", "v1", {"a": [1.0, 2.0], "b": [3.0, 4.0]})
    write(store, "item", "v2", {"a": [5.0, 6.0]}, activate=False)
    assert values(store, "item", ["a", "b"])[0] == [[1.0, 2.0], [3.0, 4.0]], "v1 serves while v2 is written"
    store.activate("item", "v2", COLUMNS, [])
    assert values(store, "item", ["a", "b"]) == ([[5.0, 6.0], [-1.0, -1.0]], [True, False])
    write(store, "item", "v3", {"c": [7.0, 8.0]})
    assert values(store, "item", ["a", "b", "c"]) == ([[-1.0, -1.0], [-1.0, -1.0], [7.0, 8.0]], [False, False, True])


def test_an_aborted_version_is_never_served(store) -> None:  # type: ignore[no-untyped-def]
    write(store, "item", "v1", {"a": [1.0, 2.0]})
    write(store, "item", "v2", {"a": [9.0, 9.0]}, activate=False)
    store.abort("item", "v2")
    assert store.active_version("item").version == "v1"
    assert values(store, "item", ["a"])[0] == [[1.0, 2.0]]
    write(store, "item", "v3", {"a": [3.0, 3.0]})  # the writer lock was released
    assert values(store, "item", ["a"])[0] == [[3.0, 3.0]]


def test_live_writes_land_in_the_live_version_and_a_replay_changes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    """The streaming job's upserts (``write_live``): into the version readers use, idempotent,
    refused for a version that is not live (nothing written). Redis takes them into versions
    written key by key (each value keeps its own TTL), and refuses them into a hash."""
    write(store, "item", "v1", {"a": [1.0, 2.0]})
    live = pack_rows("v1", np.array([[5.0, 6.0], [7.0, 8.0]]))
    if isinstance(store, RedisStore) and store not in BY_KEY:
        with pytest.raises(StoreError, match="stored as one hash"):
            store.write_live("item", "v1", ["a", "b"], live)
        assert values(store, "item", ["a", "b"]) == ([[1.0, 2.0], [-1.0, -1.0]], [True, False])
        return
    for _ in range(2):  # a replayed micro-batch writes the same bytes again
        store.write_live("item", "v1", ["a", "b"], live)
        assert values(store, "item", ["a", "b"]) == ([[5.0, 6.0], [7.0, 8.0]], [True, True])
    with pytest.raises(StoreError, match="not live at version v2"):
        store.write_live("item", "v2", ["c"], pack_rows("v2", np.array([[9.0, 9.0]])))
    assert values(store, "item", ["c"])[1] == [False]


def test_one_read_serves_several_entities(store) -> None:  # type: ignore[no-untyped-def]
    write(store, "seller", "v1", {"s-1": [1.0, 1.0]})
    write(store, "category", "v7", {"toys": [2.0, 2.0]})
    got = store.read_many({"seller": ["s-1", "s-2"], "category": ["toys", "toys"]})
    assert got["seller"][1] is None and got["seller"][0] is not None
    assert got["category"][0] == got["category"][1] is not None


def test_large_batches_with_awkward_keys_and_values_read_back_byte_for_byte(store) -> None:  # type: ignore[no-untyped-def]
    """Many rows in one write (Redis: several pipelined chunks in flight), keys that are not
    ASCII and values holding protocol bytes (CR LF, ``$``, ``*``, NUL) and join keys."""
    if isinstance(store, RedisStore):  # writes in parts of 7 rows, hashes in commands of 3 fields
        by_key = store in BY_KEY
        store = RedisStore(store.client, store.cfg.model_copy(update={"pipeline_rows": 7, "hash_fields": 3}), 0)
        if by_key:
            BY_KEY.add(store)
    keys = [f"i-{k}-é✓" if k % 3 else f"i-{k}\r\n$*" for k in range(500)]
    values_ = np.arange(1000, dtype=np.float64).reshape(500, 2) / 7
    joins = [[f"s-{k}\r\n", None if k % 5 == 0 else "toys"] for k in range(500)]
    payloads = pack_rows("v1", values_, joins)
    write_payloads(store, "item", "v1", keys, payloads)
    store.activate("item", "v1", COLUMNS, ["seller", "category"])
    assert store.read_many({"item": keys})["item"] == payloads


def test_a_second_reader_sees_the_switch(store, tmp_path, redis_target) -> None:  # type: ignore[no-untyped-def]
    if isinstance(store, EmbeddedStore):
        reader: Any = EmbeddedStore(store.path, recheck_seconds=0)
    elif isinstance(store, RedisStore):
        reader = RedisStore(make_redis(store.cfg), store.cfg, recheck_seconds=0)
    else:
        reader = DynamoDBStore(store.client, store.cfg, recheck_seconds=0)
    write(store, "item", "v1", {"a": [1.0, 1.0]})
    assert values(reader, "item", ["a"])[0] == [[1.0, 1.0]]
    write(store, "item", "v2", {"a": [2.0, 2.0]})
    assert values(reader, "item", ["a"])[0] == [[2.0, 2.0]]


# -- Redis ------------------------------------------------------------------------------------
def test_redis_versions_carry_a_ttl_and_two_writers_exclude_each_other(redis_target) -> None:  # type: ignore[no-untyped-def]
    store = redis_store(redis_target, ttl_seconds=600)
    write(store, "item", "v1", {"a": [1.0, 2.0]})
    assert 0 < store.client.ttl(f"{store.prefix}:item:a") <= 600  # the version's hash
    other = RedisStore(make_redis(store.cfg), store.cfg, recheck_seconds=0)
    store.write_batch("item", "v2", ["a"], pack_rows("v2", np.array([[0.0, 0.0]])))
    with pytest.raises(StoreError, match="another materialization"):
        other.write_batch("item", "v3", ["a"], pack_rows("v3", np.array([[0.0, 0.0]])))
    store.activate("item", "v2", COLUMNS, [])
    other.write_batch("item", "v3", ["a"], pack_rows("v3", np.array([[0.0, 0.0]])))


def test_redis_error_replies_fail_the_write_and_leave_the_connection_usable(tmp_path, redis_target) -> None:  # type: ignore[no-untyped-def]
    """Every reply of a pipelined write is read: an error reply (here: Redis out of memory)
    fails the write with a StoreError naming it, and the next write on the same client works."""
    from benchmarks.serving_store import PrivateRedis

    private = PrivateRedis(tmp_path / "redis")
    private.start()
    try:
        # generous timeouts: a freshly started server on a loaded machine can be slow to answer
        cfg = RedisConfig(url=private.url, key_prefix="oom", pipeline_rows=3, socket_timeout_ms=5000)
        store = RedisStore(make_redis(cfg), cfg, recheck_seconds=0)
        keys = [f"k-{k}" for k in range(10)]
        payloads = pack_rows("v1", np.ones((10, 2)))
        store.write_batch("item", "v1", keys[:1], payloads[:1])  # takes the writer lock
        store.client.config_set("maxmemory", "1")
        with pytest.raises(StoreError, match=r"10 writes failed, first: OOM"):
            store.write_batch("item", "v1", keys, payloads)
        store.client.config_set("maxmemory", "0")
        store.write_batch("item", "v1", keys, payloads)
        store.activate("item", "v1", COLUMNS, [])
        assert store.read_many({"item": keys})["item"] == payloads
        store.close()
    finally:
        private.stop()


def silent_server() -> socket.socket:
    """A port that accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def accepted(sock: socket.socket) -> int:
    """Connections the silent server received (all already queued: the client has given up)."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_redis_timeouts_surface_quickly_as_store_errors() -> None:
    sock = silent_server()
    try:
        cfg = RedisConfig(url=f"redis://127.0.0.1:{sock.getsockname()[1]}/0", socket_timeout_ms=100)
        store = RedisStore(make_redis(cfg), cfg)
        with pytest.raises(StoreError, match=r"redis read failed.*Timeout"):
            store.read_many({"item": ["a"]})
        # the configured socket timeout ended the read (a client without one would hang here until
        # pytest's timeout); it connected once: no retry of a timed-out read
        assert accepted(sock) == 1
    finally:
        sock.close()
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cfg = RedisConfig(url=f"redis://127.0.0.1:{port}/0")
    with pytest.raises(StoreError, match="ConnectionError"):  # nothing listens there
        RedisStore(make_redis(cfg), cfg).read_many({"item": ["a"]})


# -- DynamoDB ---------------------------------------------------------------------------------
class Throttled:
    """A real (moto) client that, like DynamoDB under throttling, processes only part of
    each batch for the first few calls and hands the rest back as unprocessed."""

    def __init__(self, client: Any, throttled_calls: int) -> None:
        self._client = client
        self.left = throttled_calls
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        self.calls += 1
        ((table, requests),) = RequestItems.items()
        if self.left <= 0 or len(requests) < 2:
            return self._client.batch_write_item(RequestItems=RequestItems)
        self.left -= 1
        half = len(requests) // 2
        self._client.batch_write_item(RequestItems={table: requests[:half]})
        return {"UnprocessedItems": {table: requests[half:]}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        ((table, spec),) = RequestItems.items()
        if self.left <= 0 or len(spec["Keys"]) < 2:
            return self._client.batch_get_item(RequestItems=RequestItems)
        self.left -= 1
        half = len(spec["Keys"]) // 2
        got = self._client.batch_get_item(RequestItems={table: {**spec, "Keys": spec["Keys"][:half]}})
        return {"Responses": got["Responses"], "UnprocessedKeys": {table: {**spec, "Keys": spec["Keys"][half:]}}}


def test_dynamodb_retries_unprocessed_items_until_all_are_written_and_read(aws, stores_template) -> None:  # type: ignore[no-untyped-def]
    plain = dynamodb_store(stores_template, max_attempts=5, write_threads=1)
    throttled = Throttled(plain.client, throttled_calls=4)
    store = DynamoDBStore(throttled, plain.cfg, recheck_seconds=0)
    rows = {f"k{i}": [float(i), float(-i)] for i in range(260)}
    write(store, "seller", "v1", rows)
    throttled.left = 3
    matrix, found = values(store, "seller", list(rows))
    assert all(found) and matrix == list(rows.values())
    assert throttled.calls > 11 + 3, "batches of 25 items / 100 keys plus the retries"


def test_dynamodb_gives_up_with_a_store_error_when_throttling_persists(aws, stores_template) -> None:  # type: ignore[no-untyped-def]
    plain = dynamodb_store(stores_template, max_attempts=2, write_threads=1)
    store = DynamoDBStore(Throttled(plain.client, throttled_calls=100), plain.cfg, recheck_seconds=0)
    with pytest.raises(StoreError, match="unprocessed"):
        write(store, "seller", "v1", {f"k{i}": [1.0, 1.0] for i in range(10)})
    assert plain.active_version("seller") is None


def table_shape(store: DynamoDBStore) -> tuple[Any, ...]:
    table = store.client.describe_table(TableName=store.table)["Table"]
    ttl = store.client.describe_time_to_live(TableName=store.table)["TimeToLiveDescription"]["AttributeName"]
    keys = sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"])
    return keys, table["BillingModeSummary"]["BillingMode"], ttl


def test_dynamodb_store_and_the_deployed_table_agree_on_key_and_ttl(aws, stores_template) -> None:  # type: ignore[no-untyped-def]
    """The table the store's own create_table makes (local runs) is the one CDK deploys -- compared
    with the synthesized template, not with a table the test made -- and every value carries the
    deployed TTL attribute (a value without it would never expire in AWS)."""
    props = only_resource(stores_template, "AWS::DynamoDB::Table")
    for key in ("KeySchema", "AttributeDefinitions"):
        assert sorted(map(sorted_items, props[key])) == sorted(map(sorted_items, TABLE_DEFINITION[key])), key
    assert props["BillingMode"] == TABLE_DEFINITION["BillingMode"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    deployed = dynamodb_store(stores_template)
    assert table_shape(deployed)[2] == TTL_ATTRIBUTE
    write(deployed, "seller", "v1", {"s-1": [1.0, 2.0]})
    values_ = [i for i in deployed.client.scan(TableName=deployed.table)["Items"] if "v" in i]
    assert values_ and all(TTL_ATTRIBUTE in item for item in values_)


def sorted_items(entry: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(entry.items()))


@pytest.fixture(params=["redis", "dynamodb"])
def leased(request, redis_target):  # type: ignore[no-untyped-def]
    """Two writers on one Redis or DynamoDB store, with a one-second writer lease."""
    if request.param == "redis":
        first: Any = redis_store(redis_target, writer_lease_seconds=1)
        second: Any = RedisStore(first.client, first.cfg, recheck_seconds=0)
    else:
        request.getfixturevalue("aws")
        first = dynamodb_store(request.getfixturevalue("stores_template"), writer_lease_seconds=1)
        second = DynamoDBStore(first.client, first.cfg, recheck_seconds=0)
    return first, second


def one_row(version: str) -> tuple[list[str], list[bytes]]:
    return ["a"], pack_rows(version, np.array([[1.0, 1.0]]))


def test_a_dead_writers_lease_lapses_and_a_lost_lease_stops_its_writer(leased) -> None:  # type: ignore[no-untyped-def]
    """A writer killed mid-run (here: one that stops writing) blocks the next materialization only
    until its lease lapses, not for an hour; when it resumes after another version took the lease,
    its renewal fails instead of writing into a slot that is no longer its own."""
    import time

    dead, next_run = leased
    dead.write_batch("seller", "v1", *one_row("v1"))
    with pytest.raises(StoreError, match=r"another materialization \(version v1\) .* frees it within 1 s"):
        next_run.write_batch("seller", "v2", *one_row("v2"))
    while True:  # the event waited for: the lease lapsed (bounded by pytest's timeout)
        try:
            next_run.write_batch("seller", "v2", *one_row("v2"))
            break
        except StoreError:
            time.sleep(0.05)
    dead._leases.renew_after_s = 0.0  # its next write renews first
    with pytest.raises(StoreError, match=r"lease on 'seller' for version v1 was lost \(version v2 now holds it"):
        dead.write_batch("seller", "v1", *one_row("v1"))
    next_run._leases.renew_after_s = 0.0
    next_run.write_batch("seller", "v2", *one_row("v2"))  # the holder's own renewal succeeds
    next_run.activate("seller", "v2", COLUMNS, [])
    assert next_run.active_version("seller").version == "v2"


def test_dynamodb_timeouts_surface_quickly_as_store_errors(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sock = silent_server()
    try:
        cfg = DynamoDBConfig(
            region="eu-west-1",
            endpoint_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
            read_timeout_ms=200,
            max_attempts=1,
        )
        store = DynamoDBStore(make_dynamodb(cfg), cfg)
        with pytest.raises(StoreError, match=r"(?i)read timeout"):
            store.read_many({"seller": ["a"]})
        # botocore's max_attempts counts retries: the first try and one retry, then the error (no
        # hang: a client without the read timeout would wait here until pytest's timeout)
        assert accepted(sock) == 1 + cfg.max_attempts
    finally:
        sock.close()


# -- streaming windows' TTL ---------------------------------------------------------------------
def _stream_write(store: Any, settings: Any) -> dict[str, int]:
    """What the streaming job's window writer does for one updated window (its code path)."""
    import pyarrow as pa

    from rankops.features import streaming

    table = pa.table(
        {
            "entity": ["item", "seller"],
            "key": ["i-1", "s-1"],
            "end_s": [1_800_000_300] * 2,
            "impressions": [4, 0],
            "clicks": [1, 0],
            "contacts": [0, 1],
        }
    )
    stores = {streaming.namespace(e, w): store for e, w, _ in streaming.groups()}
    for entity, window, feats in streaming.groups():
        streaming.ensure_live(store, streaming.namespace(entity, window), feats)
    for window in streaming.windows():
        for ns, (keys, payloads) in streaming.packed_rows(table, window, settings).items():
            stores[ns].write_live(
                ns,
                streaming.version(),
                keys,
                payloads,
                streaming.ttl_seconds(next(fs for e, w, fs in streaming.groups() if streaming.namespace(e, w) == ns)),
            )
    return {streaming.namespace(e, w): streaming.ttl_seconds(fs) for e, w, fs in streaming.groups()}


def test_streaming_window_ttl_is_window_plus_freshness_sla(settings) -> None:  # type: ignore[no-untyped-def]
    from rankops.features import registry, streaming

    for entity, window, feats in streaming.groups():
        expected = window + max(f.freshness_sla for f in feats)
        assert streaming.ttl_seconds(feats) == expected.total_seconds(), (entity, window)
    assert (
        streaming.ttl_seconds(streaming.stream_features("seller"))
        == (registry.WINDOW_1H + registry.STREAM_SLA).total_seconds()
    )


def test_streaming_values_expire_with_their_window_in_redis(redis_target, settings) -> None:  # type: ignore[no-untyped-def]
    store = redis_store(redis_target)  # batch TTL: the default 7 days
    ttls = _stream_write(store, settings)
    keys = list(store.client.scan_iter(match=f"{store.prefix}:*_stream_*@*"))
    assert keys, "the window values were written"
    for key in keys:
        ns = key.decode().split(":")[-3]
        assert 0 < store.client.ttl(key) <= ttls[ns] < store.cfg.ttl_seconds, key
    store.close()


def test_streaming_values_expire_with_their_window_in_dynamodb(stores_template, aws, settings) -> None:  # type: ignore[no-untyped-def]
    import time

    store = dynamodb_store(stores_template)
    before = int(time.time())
    ttls = _stream_write(store, settings)
    items = store.client.scan(TableName=store.cfg.table)["Items"]
    written = [i for i in items if "_stream_" in i["pk"]["S"] and "@" in i["pk"]["S"]]
    assert written
    for item in written:
        ns = item["pk"]["S"].split("#")[0]
        expires = int(item["expires_at"]["N"])
        assert before + ttls[ns] <= expires <= int(time.time()) + ttls[ns], item["pk"]
    store.close()


def test_redis_materialized_versions_are_one_hash_each_emptied_before_its_slot_is_reused(redis_target) -> None:  # type: ignore[no-untyped-def]
    """A streamed version is one hash (layout ``hash`` in the pointer, no string keys); the slot's
    old hash is dropped before a new version is written there, so a deleted entity leaves
    nothing behind; the previous version stays whole for a rollback; an aborted version's hash
    is freed; a version being streamed takes no key-by-key writes."""
    store = redis_store(redis_target, ttl_seconds=900)
    hash_a, hash_b = f"{store.prefix}:item:a", f"{store.prefix}:item:b"
    write(store, "item", "v1", {"a": [1.0, 1.0], "b": [2.0, 2.0]})
    assert (store.active_version("item").layout, store.client.hlen(hash_a)) == ("hash", 2)  # type: ignore[union-attr]
    write(store, "item", "v2", {"a": [3.0, 3.0]})
    write(store, "item", "v3", {"c": [4.0, 4.0]})  # slot a again: v1's a and b are gone
    assert store.client.hkeys(hash_a) == [b"c"] and store.client.hkeys(hash_b) == [b"a"]
    assert 0 < store.client.ttl(hash_a) <= 900 and 0 < store.client.ttl(hash_b) <= 900
    assert list(store.client.scan_iter(f"{store.prefix}:item:*:*")) == [], "no key-by-key values"
    assert values(store, "item", ["a", "b", "c"])[1] == [False, False, True]
    write(store, "item", "v4", {"d": [5.0, 5.0]}, activate=False)
    with pytest.raises(StoreError, match="being written as one hash"):
        store.write_batch("item", "v4", ["e"], pack_rows("v4", np.array([[6.0, 6.0]])))
    store.abort("item", "v4")
    assert not store.client.exists(hash_b), "the aborted version's hash is freed"
    assert (store.active_version("item").version, values(store, "item", ["c"])[0]) == ("v3", [[4.0, 4.0]])  # type: ignore[union-attr]
    store.close()


def test_redis_reads_a_version_an_older_rankops_wrote_key_by_key(redis_target) -> None:  # type: ignore[no-untyped-def]
    """A pointer written before versions had a layout (no ``layout`` field) names string keys."""
    import json

    store = redis_store(redis_target)
    payloads = pack_rows("v1", np.array([[1.0, 2.0], [3.0, 4.0]]))
    store.write_batch("item", "v1", ["a", "b"], payloads)
    store.activate("item", "v1", COLUMNS, [])
    pointer = json.loads(store.client.get(f"{store.prefix}:item:active"))
    del pointer["layout"]
    store.client.set(f"{store.prefix}:item:active", json.dumps(pointer))
    assert store.active_version("item").layout == "keys"  # type: ignore[union-attr]
    assert store.read_many({"item": ["b", "a", "c"]})["item"] == [payloads[1], payloads[0], None]
    store.close()


def test_redis_reads_hashes_and_keys_of_one_request_in_one_round_trip(redis_target) -> None:  # type: ignore[no-untyped-def]
    """A request's entities stored both ways (a materialized item, a streaming namespace) are
    read with one send on the held connection: one ``HMGET`` and one ``MGET`` back to back."""
    store = redis_store(redis_target)
    write(store, "item", "v1", {"a": [1.0, 1.0], "b": [2.0, 2.0]})
    live = pack_rows("s1", np.array([[7.0, 7.0]]))
    store.write_batch("item_stream_300s", "s1", ["a@600"], live)
    store.activate("item_stream_300s", "s1", COLUMNS, [])
    store.read_many({"item": ["a"]})  # holds a connection from now on
    conn = store._readers[0]
    sends: list[Any] = []
    inner = conn.send_packed_command

    def counted(wire: Any, **kw: Any) -> Any:
        sends.append(wire)
        return inner(wire, **kw)

    conn.send_packed_command = counted
    got = store.read_many({"item": ["b", "zz", "a"], "item_stream_300s": ["a@600", "a@900"]})
    assert len(sends) == 1
    assert got["item_stream_300s"] == [live[0], None]
    assert [p is not None for p in got["item"]] == [True, False, True]
    assert values(store, "item", ["b", "a"])[0] == [[2.0, 2.0], [1.0, 1.0]]
    store.close()


def test_redis_streamed_writes_of_arrow_chunks_read_back_as_write_batch_writes_them(redis_target) -> None:  # type: ignore[no-untyped-def]
    """``write_stream`` (materialization: Arrow chunks, no drain between them, pipelined in parts of
    ``pipeline_rows``) stores exactly the values ``write_batch`` stores for the same rows."""
    import pyarrow as pa

    from rankops.features.online.packing import pack_arrow

    store = redis_store(redis_target, pipeline_rows=7, hash_fields=4)
    keys = [f"i-{k}-é" if k % 3 else f"i-{k}\r\n$*" for k in range(100)]
    values_ = np.arange(300, dtype=np.float64).reshape(100, 3) / 7
    joins = [pa.array([f"s-{k}" if k % 4 else None for k in range(100)]), pa.array(["toys"] * 100)]
    expected = pack_rows("v1", values_, [list(row) for row in zip(*(j.to_pylist() for j in joins), strict=True)])
    chunks = [
        (pa.array(keys[lo : lo + 30]), pack_arrow("v1", values_[lo : lo + 30], [j[lo : lo + 30] for j in joins]))
        for lo in range(0, 100, 30)
    ]
    store.write_stream("item", "v1", iter(chunks))
    store.activate("item", "v1", ["x", "y", "z"], ["seller", "category"])
    assert store.read_many({"item": keys})["item"] == expected
    with pytest.raises(ValueError, match="3 keys for 2 values"):
        store.write_stream("item", "v2", [(keys[:3], expected[:2])])
    store.close()


def test_redis_reads_reconnect_after_the_server_restarts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The connection a store holds between reads is checked before each read, as redis-py's pool
    checks its connections: after a restart the next read reconnects and answers; while the server
    is down a read is a StoreError, and the store reads again once it is back."""
    from benchmarks.serving_store import PrivateRedis

    private = PrivateRedis(tmp_path / "redis")
    private.start()
    try:
        # Reconnection is the subject, not timeouts: a freshly started server on a loaded machine
        # can take longer than the serving default (50 ms) to answer the connection's handshake.
        cfg = RedisConfig(url=private.url, key_prefix="restart", socket_timeout_ms=5000, connect_timeout_ms=5000)
        store = RedisStore(make_redis(cfg), cfg, recheck_seconds=0)
        payloads = pack_rows("v1", np.ones((3, 2)))
        store.write_batch("item", "v1", ["a", "b", "c"], payloads)
        store.activate("item", "v1", COLUMNS, [])
        assert store.read_many({"item": ["a", "b", "c"]})["item"] == payloads
        private.stop()
        with pytest.raises(StoreError, match="redis read failed"):
            store.read_many({"item": ["a"]})
        private.start()
        assert store.read_many({"item": ["c", "a", "zz"]})["item"] == [payloads[2], payloads[0], None]
        private.stop()
        private.start()  # the held connection is now closed by the server: checked, reconnected
        assert store.read_many({"item": ["b"]})["item"] == [payloads[1]]
        store.close()
    finally:
        private.stop()
