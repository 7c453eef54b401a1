"""DynamoDB online store: BatchWriteItem / BatchGetItem with retries of unprocessed items.

One table holds every entity. Its shape is the one CDK deploys (``infra/constructs/online_stores.py``:
partition key ``pk``, sort key ``sk``, both strings; TTL attribute ``expires_at``); the store
follows the deployed table rather than the other way round, because changing a deployed table's
key schema replaces the table. Every item has its own ``pk`` (values spread over partitions);
``sk`` names the kind of item::

    pk = "<entity>#active"       sk = "active"  attribute meta: JSON ActiveVersion (version, columns, joins, slot)
    pk = "<entity>#<slot>#<id>"  sk = "value"   attribute v: packed value (binary), expires_at: epoch s (TTL)
    pk = "<entity>#lock"         sk = "lock"    the writing version and when its lease expires
                                                (renewed while writing: rankops.features.online.lease)

Versions alternate between two key slots, exactly as in the Redis store (see
:mod:`rankops.features.online.redis` for why): a write never touches the slot
readers use, one ``PutItem`` of the pointer switches versions, stale values are
rejected by their version tag and expire by TTL. Reads deduplicate keys (BatchGetItem
rejects duplicates) and split into requests of 100 keys; writes go in requests of
25 items on a few threads. The client is injected; ``make_dynamodb`` builds one
with short timeouts, so failures surface as ``StoreError`` quickly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

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


class DynamoDBConfig(StoreSettings):
    """``[online_store.dynamodb]``."""

    type: Literal["dynamodb"] = "dynamodb"
    table: str = "rankops-entity-stats"
    region: str | None = None
    endpoint_url: str | None = None
    connect_timeout_ms: int = Field(200, gt=0)
    read_timeout_ms: int = Field(300, gt=0)
    max_attempts: int = Field(3, ge=1)  # botocore retries, and rounds of unprocessed-item retries
    ttl_seconds: int = Field(30 * 24 * 3600, gt=0)
    write_threads: int = Field(4, ge=1)
    writer_lease_seconds: int = Field(LEASE_SECONDS, ge=1)  # a dead materialization blocks the next this long


SLOTS = ("a", "b")
WRITE_BATCH = 25
READ_BATCH = 100
# The deployed table's key and TTL attribute names (infra/constructs/online_stores.py).
PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE = "pk", "sk", "expires_at"
# the table create_table makes for local runs; in AWS the CDK stack makes it, and
# tests/integration/test_online_stores.py checks the two agree (key, billing, TTL)
TABLE_DEFINITION: dict[str, Any] = {
    "KeySchema": [
        {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
        {"AttributeName": SORT_KEY, "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def _key(pk: str, kind: str) -> dict[str, Any]:
    """The full primary key of one item (``kind`` is the sort key: active, value or lock)."""
    return {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": kind}}


def make_dynamodb(cfg: DynamoDBConfig, serving_timeout_s: float | None = None) -> Any:
    """A low-level DynamoDB client with the configured timeouts and retry budget. For the
    inference server (``serving_timeout_s``): timeouts capped to it and a single attempt, since
    a retried read cannot fit the latency budget (the circuit breaker and the fallback chain
    handle a failing store)."""
    import boto3
    from botocore.config import Config

    from rankops.features.online.base import capped

    retries: dict[str, Any] = (
        {"total_max_attempts": 1, "mode": "standard"}
        if serving_timeout_s is not None
        else {"max_attempts": cfg.max_attempts, "mode": "standard"}
    )
    config = Config(
        connect_timeout=capped(cfg.connect_timeout_ms, serving_timeout_s),
        read_timeout=capped(cfg.read_timeout_ms, serving_timeout_s),
        retries=retries,
        max_pool_connections=max(10, cfg.write_threads * 2),
    )
    return boto3.client("dynamodb", region_name=cfg.region, endpoint_url=cfg.endpoint_url, config=config)


class DynamoDBStore:
    kind = name = "dynamodb"
    worst_call_s = 0.0  # on the serving path: the longest one call may take (0: not bounded here)

    def __init__(
        self, client: Any, cfg: DynamoDBConfig, recheck_seconds: float = 1.0, read_rounds: int | None = None
    ) -> None:
        self.client = client
        self.cfg = cfg
        # BatchGetItem rounds for unprocessed keys: 1 on the serving path (no waiting on throttling)
        self.read_rounds = read_rounds if read_rounds is not None else cfg.max_attempts + 1
        self.table = cfg.table
        self._pointers = PointerCache(self._load_active, recheck_seconds)
        self._writing: dict[tuple[str, str], str] = {}
        self._leases = LeaseClock(cfg.writer_lease_seconds)

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as err:
            raise StoreError(f"dynamodb {what} on table {self.table!r} failed: {err}") from err

    def create_table(self) -> None:
        """Create the table with TTL enabled (tests and local runs; in AWS the CDK stack does)."""
        existing = self._call("list_tables", self.client.list_tables).get("TableNames", [])
        if self.table in existing:
            return
        self._call("create_table", self.client.create_table, TableName=self.table, **TABLE_DEFINITION)
        self.client.get_waiter("table_exists").wait(TableName=self.table)
        self._call(
            "update_time_to_live",
            self.client.update_time_to_live,
            TableName=self.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    # -- writes ------------------------------------------------------------------------------
    def _slot_for(self, entity: str, version: str) -> str:
        """The slot a version writes to, under a writer lease (renewed while writing)."""
        slot = self._writing.get((entity, version))
        if slot is not None:
            if self._leases.due(entity, version):
                self._lease(entity, version, renew=True)
            return slot
        self._lease(entity, version, renew=False)
        active = self._load_active(entity)
        slot = SLOTS[1] if active is not None and active.slot == SLOTS[0] else SLOTS[0]
        self._writing[(entity, version)] = slot
        return slot

    def _write_chunk(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self.table: requests}
        for attempt in range(self.cfg.max_attempts + 1):
            response = self._call("batch_write_item", self.client.batch_write_item, RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))
        left = sum(len(v) for v in pending.values())
        raise StoreError(f"dynamodb kept {left} items unprocessed after {self.cfg.max_attempts} retries (throttled?)")

    def write_batch(
        self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
    ) -> None:
        if len(keys) != len(payloads):
            raise ValueError(f"{len(keys)} keys for {len(payloads)} values")
        prefix = f"{entity}#{self._slot_for(entity, version)}#"
        expires = str(int(time.time()) + (ttl_s or self.cfg.ttl_seconds))
        requests = [
            {"PutRequest": {"Item": {**_key(prefix + k, "value"), "v": {"B": p}, TTL_ATTRIBUTE: {"N": expires}}}}
            for k, p in zip(keys, payloads, strict=True)
        ]
        chunks = [requests[i : i + WRITE_BATCH] for i in range(0, len(requests), WRITE_BATCH)]
        with ThreadPoolExecutor(max_workers=self.cfg.write_threads) as pool:
            for _ in pool.map(self._write_chunk, chunks):
                pass

    def write_live(
        self, entity: str, version: str, keys: list[str], payloads: list[bytes], ttl_s: int | None = None
    ) -> None:
        """Upsert into the live version in place (see :func:`base.write_into_live`)."""
        write_into_live(self, entity, version, keys, payloads, ttl_s)

    def _lease(self, entity: str, version: str, renew: bool) -> None:
        """Take the lease (free, expired or this version's) or renew it (only while this version
        still holds it: a lapsed or taken lease stops the writer, see the lease module)."""
        from botocore.exceptions import BotoCoreError, ClientError

        now = int(time.time())
        condition = "version = :v" if renew else "attribute_not_exists(pk) OR expires < :now OR version = :v"
        values = {":v": {"S": version}} | ({} if renew else {":now": {"N": str(now)}})
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **_key(f"{entity}#lock", "lock"),
                    "version": {"S": version},
                    "expires": {"N": str(now + self._leases.lease_s)},
                },
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise StoreError(f"dynamodb lock on table {self.table!r} failed: {err}") from err
            holder = err.response.get("Item", {}).get("version", {}).get("S")
            if renew:
                raise StoreError(self._leases.lapsed("dynamodb", entity, version, holder)) from err
            raise StoreError(self._leases.held_by_other(f"dynamodb table {self.table!r}", entity, holder)) from err
        except BotoCoreError as err:
            raise StoreError(f"dynamodb lock on table {self.table!r} failed: {err}") from err
        self._leases.held(entity, version)

    def activate(self, entity: str, version: str, columns: list[str], joins: list[str]) -> None:
        slot = self._slot_for(entity, version)
        meta = ActiveVersion(version, columns, joins, slot).to_json()
        self._call(
            "transact_write_items",
            self.client.transact_write_items,
            TransactItems=[
                {"Put": {"TableName": self.table, "Item": {**_key(f"{entity}#active", "active"), "meta": {"S": meta}}}},
                {"Delete": {"TableName": self.table, "Key": _key(f"{entity}#lock", "lock")}},
            ],
        )
        self._writing.pop((entity, version), None)
        self._leases.forget(entity, version)
        self._pointers.forget(entity)

    def abort(self, entity: str, version: str) -> None:
        self._leases.forget(entity, version)
        if self._writing.pop((entity, version), None) is not None:
            self._call(
                "delete_item",
                self.client.delete_item,
                TableName=self.table,
                Key=_key(f"{entity}#lock", "lock"),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"S": version}},
            )

    # -- reads -------------------------------------------------------------------------------
    def _load_active(self, entity: str) -> ActiveVersion | None:
        item = self._call(
            "get_item",
            self.client.get_item,
            TableName=self.table,
            Key=_key(f"{entity}#active", "active"),
            ConsistentRead=True,
        ).get("Item")
        return ActiveVersion.from_json(item["meta"]["S"]) if item else None

    def active_version(self, entity: str) -> ActiveVersion | None:
        return self._pointers.get(entity)

    def _get_chunk(self, pks: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        pending: dict[str, Any] = {
            self.table: {"Keys": [_key(pk, "value") for pk in pks], "ProjectionExpression": "pk, v"}
        }
        for attempt in range(self.read_rounds):
            response = self._call("batch_get_item", self.client.batch_get_item, RequestItems=pending)
            for item in response.get("Responses", {}).get(self.table, []):
                found[item[PARTITION_KEY]["S"]] = item["v"]["B"]
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return found
            if attempt + 1 < self.read_rounds:
                time.sleep(min(0.01 * 2**attempt, 0.2))
        raise StoreError(f"dynamodb left keys unprocessed after {self.read_rounds} rounds (throttled?)")

    def read_many(self, requests: Mapping[str, list[str]]) -> dict[str, list[bytes | None]]:
        """One logical batched read: every key of every entity, deduplicated, in requests of 100."""
        wanted: dict[str, None] = {}
        prefixes: dict[str, str] = {}
        out: dict[str, list[bytes | None]] = {}
        for entity, keys in requests.items():
            active = self.active_version(entity)
            if active is None:
                out[entity] = [None] * len(keys)
                continue
            prefixes[entity] = f"{entity}#{active.slot}#"
            wanted.update(dict.fromkeys(prefixes[entity] + k for k in keys))
        pks = list(wanted)
        found: dict[str, bytes] = {}
        chunks = [pks[i : i + READ_BATCH] for i in range(0, len(pks), READ_BATCH)]
        if len(chunks) == 1:
            found = self._get_chunk(chunks[0])
        elif chunks:
            with ThreadPoolExecutor(max_workers=min(len(chunks), 8)) as pool:
                for part in pool.map(self._get_chunk, chunks):
                    found.update(part)
        for entity, prefix in prefixes.items():
            out[entity] = [found.get(prefix + k) for k in requests[entity]]
        return out

    def read(self, entity: str, keys: list[str]) -> list[bytes | None]:
        return self.read_many({entity: keys})[entity]

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


def connect(cfg: DynamoDBConfig, options: OpenOptions) -> DynamoDBStore:
    """A store over a new client built by :func:`make_dynamodb`; one BatchGetItem round on the
    serving path (no waiting on throttling there)."""
    serving = options.serving_timeout_s is not None
    store = DynamoDBStore(
        make_dynamodb(cfg, options.serving_timeout_s),
        cfg,
        recheck_seconds=options.recheck_seconds,
        read_rounds=1 if serving else None,
    )
    store.worst_call_s = serving_worst_call_s((cfg.connect_timeout_ms, cfg.read_timeout_ms), options)
    return store
